package ratelimit

import (
	"testing"

	"github.com/hookline/hookline/shared/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }
