//go:build !linux

package doctor

// Statfs is not implemented off Linux: the disk check reports it.
func Statfs(string) (DiskUsage, error) { return DiskUsage{}, errNoStatfs }
