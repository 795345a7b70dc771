//go:build !race

package fakes_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scmhub/ibapi/protobuf"
)

// scmhub calls a *ProtoBuf callback only for a message that came as protobuf:
// these record which did, so that tests see the form of each answer through
// scmhub's own decoder.
func (r *logRecorder) sawProto(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.protos == nil {
		r.protos = map[string]bool{}
	}
	r.protos[name] = true
}

func (r *logRecorder) ErrorProtoBuf(*protobuf.ErrorMessage)           { r.sawProto("ERR_MSG") }
func (r *logRecorder) ExecDetailsProtoBuf(*protobuf.ExecutionDetails) { r.sawProto("EXECUTION_DATA") }
func (r *logRecorder) ExecDetailsEndProtoBuf(*protobuf.ExecutionDetailsEnd) {
	r.sawProto("EXECUTION_DATA_END")
}
func (r *logRecorder) CommissionAndFeesReportProtoBuf(*protobuf.CommissionAndFeesReport) {
	r.sawProto("COMMISSION_REPORT")
}
func (r *logRecorder) CompletedOrdersEndProtoBuf(*protobuf.CompletedOrdersEnd) {
	r.sawProto("COMPLETED_ORDERS_END")
}
func (r *logRecorder) UpdateAccountValueProtoBuf(*protobuf.AccountValue) { r.sawProto("ACCT_VALUE") }
func (r *logRecorder) UpdatePortfolioProtoBuf(*protobuf.PortfolioValue) {
	r.sawProto("PORTFOLIO_VALUE")
}
func (r *logRecorder) UpdateAccountTimeProtoBuf(*protobuf.AccountUpdateTime) {
	r.sawProto("ACCT_UPDATE_TIME")
}
func (r *logRecorder) AccountDataEndProtoBuf(*protobuf.AccountDataEnd) {
	r.sawProto("ACCT_DOWNLOAD_END")
}
func (r *logRecorder) ManagedAccountsProtoBuf(*protobuf.ManagedAccounts) {
	r.sawProto("MANAGED_ACCTS")
}
func (r *logRecorder) PositionProtoBuf(*protobuf.Position)       { r.sawProto("POSITION_DATA") }
func (r *logRecorder) PositionEndProtoBuf(*protobuf.PositionEnd) { r.sawProto("POSITION_END") }
func (r *logRecorder) PositionMultiProtoBuf(*protobuf.PositionMulti) {
	r.sawProto("POSITION_MULTI")
}
func (r *logRecorder) PositionMultiEndProtoBuf(*protobuf.PositionMultiEnd) {
	r.sawProto("POSITION_MULTI_END")
}
func (r *logRecorder) AccountUpdateMultiProtoBuf(*protobuf.AccountUpdateMulti) {
	r.sawProto("ACCOUNT_UPDATE_MULTI")
}
func (r *logRecorder) AccountUpdateMultiEndProtoBuf(*protobuf.AccountUpdateMultiEnd) {
	r.sawProto("ACCOUNT_UPDATE_MULTI_END")
}
func (r *logRecorder) PnLProtoBuf(*protobuf.PnL)             { r.sawProto("PNL") }
func (r *logRecorder) PnLSingleProtoBuf(*protobuf.PnLSingle) { r.sawProto("PNL_SINGLE") }
func (r *logRecorder) NextValidIdProtoBuf(*protobuf.NextValidId) {
	r.sawProto("NEXT_VALID_ID")
}
func (r *logRecorder) CurrentTimeProtoBuf(*protobuf.CurrentTime) { r.sawProto("CURRENT_TIME") }

// protoSince is the version from which the fake sends each answer of the
// startup test as protobuf (docs/adr/0010).
var protoSince = map[string]int{
	"ERR_MSG": 201, "EXECUTION_DATA": 201, "EXECUTION_DATA_END": 201, "COMMISSION_REPORT": 201,
	"COMPLETED_ORDERS_END": 204,
	"ACCT_VALUE":           207, "PORTFOLIO_VALUE": 207, "ACCT_UPDATE_TIME": 207, "ACCT_DOWNLOAD_END": 207,
	"MANAGED_ACCTS": 207, "POSITION_DATA": 207, "POSITION_END": 207, "POSITION_MULTI": 207,
	"POSITION_MULTI_END": 207, "ACCOUNT_UPDATE_MULTI": 207, "ACCOUNT_UPDATE_MULTI_END": 207,
	"PNL": 210, "PNL_SINGLE": 210, "NEXT_VALID_ID": 213, "CURRENT_TIME": 213,
}

// checkProtoForms checks, after a whole startup test at version v, that every
// answer came as protobuf exactly from its version on.
func checkProtoForms(t *testing.T, r *logRecorder, v int) {
	t.Helper()
	want := map[string]bool{}
	for name, since := range protoSince {
		if v >= since {
			want[name] = true
		}
	}
	r.mu.Lock()
	got := r.protos
	r.mu.Unlock()
	if got == nil {
		got = map[string]bool{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers scmhub decoded as protobuf at %d (-want +got):\n%s", v, diff)
	}
}
