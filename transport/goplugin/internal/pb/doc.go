// Package pb holds the protobuf messages and gRPC stubs generated from broker.proto,
// the wire format of the goplugin transport. Regenerate with `make proto`; do not edit by hand.
package pb
