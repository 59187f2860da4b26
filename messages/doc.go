// Package messages holds bookd's actor protocol: the .proto files under
// bookd/v1 and the Go generated from them (checked in). Regenerate with
// `make generate`; CI fails when that changes a file.
package messages

//go:generate go tool buf generate
