//go:build tools

// Package tools pins the SeaweedFS program (`weed`: master, volume, filer and
// the S3 gateway in one binary) that scripts/install-tools builds.
package tools

import (
	_ "github.com/seaweedfs/seaweedfs/weed"
)
