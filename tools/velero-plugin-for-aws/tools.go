//go:build tools

// Package tools pins velero-plugin-for-aws, Velero's object-store plugin for S3 and
// S3-compatible storage (Ceph RGW; SeaweedFS in the lab). `velero server` runs it from its
// --plugin-dir (infra/lab/velero.py links it there).
package tools

import (
	_ "github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws"
)
