//go:build tools

// Package tools pins kube-score, the manifest checker the tests run over the rendered
// Kubernetes objects of every province file (tests/test_kube_score.py).
package tools

import (
	_ "github.com/zegl/kube-score/cmd/kube-score"
)
