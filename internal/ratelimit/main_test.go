package ratelimit

import (
	"testing"

	"github.com/hookline/hookline/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }
