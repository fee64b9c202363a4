package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// A development PKI: one CA and one certificate per service, for `make run` and tests. Production
// certificates come from the operator's CA (or the mesh); nothing here is meant to outlive a laptop.

const (
	caValidity   = 365 * 24 * time.Hour
	leafValidity = 30 * 24 * time.Hour
)

// CA signs development certificates.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
	keyPEM  []byte
}

// NewCA creates a self-signed CA.
func NewCA(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"bourse development"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return newCA(der, key)
}

func newCA(der []byte, key *ecdsa.PrivateKey) (*CA, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key, keyPEM: keyPEM}, nil
}

// LoadCA reads a CA written by WriteDevPKI.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s or %s: no PEM block", certFile, keyFile)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	ca, err := newCA(cb.Bytes, key)
	if err != nil {
		return nil, err
	}
	if !ca.Cert.IsCA || time.Now().After(ca.Cert.NotAfter.Add(-leafValidity)) {
		return nil, fmt.Errorf("%s: not a CA, or it expires before a new certificate would", certFile)
	}
	return ca, nil
}

// Issue returns a certificate and key for service name, valid for both sides of a connection
// (server and client auth), naming name, localhost, 127.0.0.1 and ::1.
func (ca *CA) Issue(name string) (certPEM, keyPEM []byte, err error) {
	return issue(name, ca.Cert, ca.key)
}

// SelfSigned returns a certificate for name signed by its own key: right name, no trusted chain.
func SelfSigned(name string) (certPEM, keyPEM []byte, err error) {
	return issue(name, nil, nil)
}

func issue(name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	if name == "" {
		return nil, nil, errors.New("tlsconfig: certificate name is empty")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"bourse development"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{name, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// WriteDevPKI makes dir hold ca.crt (and ca.key) and <name>.crt/<name>.key for each name. An
// existing CA is kept, so certificates handed to tools earlier stay valid; the service
// certificates are issued anew each time.
func WriteDevPKI(dir string, names ...string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caCert, caKey := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	ca, err := LoadCA(caCert, caKey)
	if err != nil {
		if ca, err = NewCA("bourse development CA"); err != nil {
			return nil, err
		}
		if err := writeFile(caKey, ca.keyPEM, 0o600); err != nil {
			return nil, err
		}
		if err := writeFile(caCert, ca.CertPEM, 0o644); err != nil {
			return nil, err
		}
	}
	for _, name := range names {
		certPEM, keyPEM, err := ca.Issue(name)
		if err != nil {
			return nil, err
		}
		// Key first: a running service that reloads between the two writes sees a mismatched pair
		// and keeps its previous one until the certificate lands.
		if err := writeFile(filepath.Join(dir, name+".key"), keyPEM, 0o600); err != nil {
			return nil, err
		}
		if err := writeFile(filepath.Join(dir, name+".crt"), certPEM, 0o644); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// FilesIn are the paths WriteDevPKI wrote for name.
func FilesIn(dir, name string) Files {
	return Files{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: filepath.Join(dir, "ca.crt")}
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// writeFile replaces path atomically, so a reader never sees half a PEM file.
func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}
