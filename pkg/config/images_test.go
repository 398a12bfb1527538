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
