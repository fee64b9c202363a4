package modelconfig

import "slices"

// Select returns the versions the policy serves out of those available, newest first.
func (p VersionPolicy) Select(available []int64) []int64 {
	sorted := slices.Clone(available)
	slices.Sort(sorted)
	slices.Reverse(sorted)
	switch {
	case p.All:
		return sorted
	case len(p.Specific) > 0:
		var out []int64
		for _, v := range sorted {
			if slices.Contains(p.Specific, v) {
				out = append(out, v)
			}
		}
		return out
	default:
		n := max(p.Latest, 1)
		return sorted[:min(n, len(sorted))]
	}
}
