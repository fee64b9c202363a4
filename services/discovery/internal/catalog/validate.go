package catalog

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/bourse-dev/bourse/pkg/consul"
	"github.com/bourse-dev/bourse/pkg/errs"
)

// Limits of what the catalog accepts. Names are DNS labels because Consul also serves them over DNS.
var (
	namePattern    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	idPattern      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	hostPattern    = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	metaKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
)

const (
	maxTags         = 64
	maxTagLen       = 255
	maxMeta         = 64
	maxMetaValueLen = 512
	minInterval     = time.Second
	maxInterval     = time.Hour
	minDeregister   = time.Minute
	maxWait         = 5 * time.Minute

	DefaultInterval        = 5 * time.Second
	DefaultTimeout         = 2 * time.Second
	DefaultDeregisterAfter = time.Minute
	DefaultWait            = 30 * time.Second
)

func validateName(field, name string) error {
	if name == "" {
		return errs.Invalid(field, "is required")
	}
	if !namePattern.MatchString(name) {
		return errs.Invalid(field, "%q is not a DNS label (letters, digits and '-', at most 63)", name)
	}
	return nil
}

func validateID(id string) error {
	if !idPattern.MatchString(id) {
		return errs.Invalid("id", "%q must be 1-128 of letters, digits, '.', '_', ':' or '-', starting with a letter or digit", id)
	}
	return nil
}

func validateAddress(addr string) error {
	if addr == "" {
		return errs.Invalid("address", "is required")
	}
	if ip := net.ParseIP(addr); ip != nil {
		if ip.IsUnspecified() {
			return errs.Invalid("address", "%q is unspecified; register an address clients can dial", addr)
		}
		return nil
	}
	if len(addr) > 253 || !hostPattern.MatchString(addr) {
		return errs.Invalid("address", "%q is neither an IP address nor a host name", addr)
	}
	return nil
}

func validatePort(port uint32) error {
	if port == 0 || port > 65535 {
		return errs.Invalid("port", "%d is outside 1-65535", port)
	}
	return nil
}

func validateTags(tags []string) error {
	if len(tags) > maxTags {
		return errs.Invalid("tags", "at most %d tags", maxTags)
	}
	for i, t := range tags {
		field := fmt.Sprintf("tags[%d]", i)
		if t == "" {
			return errs.Invalid(field, "is empty")
		}
		if len(t) > maxTagLen {
			return errs.Invalid(field, "is longer than %d bytes", maxTagLen)
		}
		if strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return errs.Invalid(field, "%q contains whitespace or control characters", t)
		}
	}
	return nil
}

func validateMeta(meta map[string]string) error {
	if len(meta) > maxMeta {
		return errs.Invalid("metadata", "at most %d entries", maxMeta)
	}
	for k, v := range meta {
		field := fmt.Sprintf("metadata[%q]", k)
		if !metaKeyPattern.MatchString(k) {
			return errs.Invalid(field, "key must be 1-128 of letters, digits, '_' or '-'")
		}
		if strings.HasPrefix(k, "consul-") {
			return errs.Invalid(field, "keys starting with \"consul-\" are reserved")
		}
		if len(v) > maxMetaValueLen {
			return errs.Invalid(field, "value is longer than %d bytes", maxMetaValueLen)
		}
	}
	return nil
}

func validateCheck(c *consul.Check) error {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = min(DefaultTimeout, c.Interval)
	}
	if c.DeregisterAfter == 0 {
		c.DeregisterAfter = DefaultDeregisterAfter
	}
	if c.Interval < minInterval || c.Interval > maxInterval {
		return errs.Invalid("check.interval", "%v is outside %v-%v", c.Interval, minInterval, maxInterval)
	}
	if c.Timeout < 0 || c.Timeout > c.Interval {
		return errs.Invalid("check.timeout", "%v must be positive and at most the interval %v", c.Timeout, c.Interval)
	}
	if c.DeregisterAfter < minDeregister {
		return errs.Invalid("check.deregister_critical_after", "%v is below Consul's minimum %v", c.DeregisterAfter, minDeregister)
	}
	switch c.Kind {
	case consul.CheckHTTP:
		u, err := url.Parse(c.Target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errs.Invalid("check.target", "%q is not an http(s) URL", c.Target)
		}
	case consul.CheckGRPC:
		if c.Target != "" && !namePattern.MatchString(strings.ReplaceAll(c.Target, ".", "-")) {
			return errs.Invalid("check.target", "%q is not a gRPC service name", c.Target)
		}
	case consul.CheckTCP, consul.CheckNone:
		if c.Target != "" {
			return errs.Invalid("check.target", "must be empty for this check kind")
		}
	default:
		return errs.Invalid("check.kind", "unknown check kind %d", c.Kind)
	}
	return nil
}

func validateFilter(f Filter) error {
	if err := validateTags(f.Tags); err != nil {
		return err
	}
	return validateMeta(f.Meta)
}
