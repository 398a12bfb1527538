// Parsing Redis and Sentinel replies (ROLE, INFO, flat key/value arrays). Pure.

package redis

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

func dialHost(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

// parseRole reads a ROLE reply: ["master", offset, [...]] or ["slave", host, port, state, offset].
func parseRole(val any, v *memberView) error {
	arr, ok := val.([]any)
	if !ok || len(arr) == 0 {
		return fmt.Errorf("ROLE: unexpected reply %T", val)
	}
	role, _ := arr[0].(string)
	switch role {
	case "master":
		if len(arr) < 2 {
			return errors.New("ROLE: short master reply")
		}
		v.Role, v.Offset = "master", toInt64(arr[1])
	case "slave":
		if len(arr) < 5 {
			return errors.New("ROLE: short replica reply")
		}
		v.Role = "slave"
		v.MasterHost, _ = arr[1].(string)
		v.MasterPort = int(toInt64(arr[2]))
		state, _ := arr[3].(string)
		v.LinkUp = state == "connected"
		v.Offset = toInt64(arr[4])
	default:
		return fmt.Errorf("ROLE: role %q is not a data member", role)
	}
	return nil
}

func toInt64(x any) int64 {
	switch t := x.(type) {
	case int64:
		return t
	case string:
		n, _ := strconv.ParseInt(t, 10, 64)
		return n
	}
	return 0
}

func infoField(info, key string) string {
	for _, line := range strings.Split(info, "\n") {
		if k, val, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == key {
			return val
		}
	}
	return ""
}

// kv turns a flat [k, v, k, v...] reply (or a RESP map) into a map.
func kv(x any) map[string]string {
	switch t := x.(type) {
	case []any:
		m := make(map[string]string, len(t)/2)
		for i := 0; i+1 < len(t); i += 2 {
			k, _ := t[i].(string)
			m[k] = fmt.Sprint(t[i+1])
		}
		return m
	case map[any]any:
		m := make(map[string]string, len(t))
		for k, v := range t {
			m[fmt.Sprint(k)] = fmt.Sprint(v)
		}
		return m
	}
	return nil
}

func list(x any) []map[string]string {
	arr, ok := x.([]any)
	if !ok {
		return nil
	}
	out := make([]map[string]string, 0, len(arr))
	for _, a := range arr {
		if m := kv(a); m != nil {
			out = append(out, m)
		}
	}
	return out
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
