// Talking to the redis processes: clients, a member's ROLE, the server's version.

package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

func serverVersion() string {
	out, err := execOutput("redis-server", "--version")
	if err != nil {
		return "redis-server ?"
	}
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "v=") {
			return "Redis " + strings.TrimPrefix(f, "v=")
		}
	}
	return strings.TrimSpace(out)
}

func client(addr string) *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
}

func roleOf(ctx context.Context, addr string) string {
	c := client(addr)
	defer c.Close()
	v, err := c.Do(ctx, "ROLE").Slice()
	if err != nil || len(v) == 0 {
		return ""
	}
	return fmt.Sprint(v[0])
}

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}
