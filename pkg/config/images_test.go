package config

import (
	"strings"
	"testing"
	"time"
)

func TestImagesGCAfter(t *testing.T) {
	cfg, err := Load([]string{"--dataDir=/tmp/x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Images.GCAfter != 0 {
		t.Fatalf("default --images.gcAfter = %s, want 0 (off)", cfg.Images.GCAfter)
	}
	cfg, err = Load([]string{"--dataDir=/tmp/x", "--images.gcAfter=36h"}, nil)
	if err != nil || cfg.Images.GCAfter != 36*time.Hour {
		t.Fatalf("--images.gcAfter=36h: %s, %v", cfg.Images.GCAfter, err)
	}
	cfg, err = Load([]string{"--dataDir=/tmp/x"}, []string{"CONSTELLATION_IMAGES_GCAFTER=2h"})
	if err != nil || cfg.Images.GCAfter != 2*time.Hour {
		t.Fatalf("CONSTELLATION_IMAGES_GCAFTER=2h: %s, %v", cfg.Images.GCAfter, err)
	}
	if _, err := Load([]string{"--dataDir=/tmp/x", "--images.gcAfter=-1m"}, nil); err == nil || !strings.Contains(err.Error(), "--images.gcAfter") {
		t.Fatalf("a negative --images.gcAfter = %v, want an error naming it", err)
	}
}

func TestImagesSendRate(t *testing.T) {
	rate := func(c *Config) int64 {
		t.Helper()
		n, err := c.Images.SendRateBytes()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	cfg, err := Load([]string{"--dataDir=/tmp/x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := rate(cfg); n != 0 {
		t.Fatalf("default --images.sendRate = %d, want 0 (unlimited)", n)
	}
	for flag, want := range map[string]int64{"10000000": 10_000_000, "10MB": 10_000_000, "10M": 10_000_000, "8MiB": 8 << 20,
		"500kB/s": 500_000, "1.5GB": 1_500_000_000, "0": 0, "64 KiB": 64 << 10} {
		cfg, err = Load([]string{"--dataDir=/tmp/x", "--images.sendRate=" + flag}, nil)
		if err != nil || rate(cfg) != want {
			t.Errorf("--images.sendRate=%s: %v, want %d", flag, err, want)
		}
	}
	cfg, err = Load([]string{"--dataDir=/tmp/x"}, []string{"CONSTELLATION_IMAGES_SENDRATE=2500000"})
	if err != nil || rate(cfg) != 2_500_000 {
		t.Fatalf("CONSTELLATION_IMAGES_SENDRATE=2500000: %v", err)
	}
	for _, bad := range []string{"-1", "-10MB", "10XB", "fast", "1e6", "MB"} {
		if _, err := Load([]string{"--dataDir=/tmp/x", "--images.sendRate=" + bad}, nil); err == nil || !strings.Contains(err.Error(), "--images.sendRate") {
			t.Errorf("--images.sendRate=%s: %v, want an error naming the flag", bad, err)
		}
	}
}
