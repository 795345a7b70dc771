#!/usr/bin/env bash
# Regenerates the protobuf Go code of the repository:
#  - transport/goplugin/internal/pb from broker.proto (go-plugin gRPC);
#  - fakes/internal/twspb from the official TWS API schemas that scmhub/ibapi ships
#    under proto/ (only the messages the fake gateway speaks, see TWS_PROTOS below).
# Needs protoc (Debian: protobuf-compiler); installs the Go plugins at the pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v protoc >/dev/null; then
  echo "protoc not found: apt-get install -y protobuf-compiler" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gobin=$tmp/bin
GOBIN=$gobin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GOBIN=$gobin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
export PATH="$gobin:$PATH"

protoc --proto_path=transport/goplugin/internal/pb \
  --go_out=paths=source_relative:transport/goplugin/internal/pb \
  --go-grpc_out=paths=source_relative:transport/goplugin/internal/pb broker.proto orders.proto
echo "regenerated transport/goplugin/internal/pb"

# The fake gateway's TWS messages. The schemas come from the scmhub/ibapi module
# pinned in go.mod (the official TWS API .proto files), but the fake does not use
# scmhub's generated types: it would then be the client checked against itself.
# The copies get their own proto package and file path, so that both sets of
# generated code can live in one binary (the global protobuf registry refuses
# two files or messages of the same name); the wire form does not depend on names.
TWS_PROTOS=(
  StartApiRequest IdsRequest CurrentTimeRequest ManagedAccountsRequest
  PositionsRequest CancelPositions AccountSummaryRequest CancelAccountSummary
  ErrorMessage ManagedAccounts NextValidId CurrentTime
  Position PositionEnd AccountSummary AccountSummaryEnd
  Contract ComboLeg DeltaNeutralContract
  AccountDataRequest ExecutionRequest ExecutionFilter OpenOrdersRequest AllOpenOrdersRequest
  AutoOpenOrdersRequest CompletedOrdersRequest MarketDataTypeRequest PositionsMultiRequest CancelPositionsMulti
  AccountUpdatesMultiRequest CancelAccountUpdatesMulti PnLRequest CancelPnL PnLSingleRequest CancelPnLSingle
  CancelMarketData CancelHistoricalData
  AccountValue PortfolioValue AccountUpdateTime AccountDataEnd OpenOrdersEnd CompletedOrdersEnd
  ExecutionDetails Execution ExecutionDetailsEnd CommissionAndFeesReport PositionMulti PositionMultiEnd
  AccountUpdateMulti AccountUpdateMultiEnd PnL PnLSingle
  PlaceOrderRequest AttachedOrders Order OrderCondition SoftDollarTier OrderState OrderAllocation
  OpenOrder OrderStatus CompletedOrder CancelOrderRequest OrderCancel
  ContractDataRequest MarketDataRequest HistoricalDataRequest MatchingSymbolsRequest
  ContractData ContractDataEnd ContractDetails IneligibilityReason SymbolSamples ContractDescription
  TickPrice TickSize TickString TickGeneric TickSnapshotEnd MarketDataType TickReqParams
  HistoricalData HistoricalDataBar HistoricalDataEnd
)
ibapi=$(go list -m -f '{{.Dir}}' github.com/scmhub/ibapi)
out=fakes/internal/twspb
src=$tmp/src/twspb
mkdir -p "$src"
for p in "${TWS_PROTOS[@]}"; do
  sed -e 's/^package protobuf;/package brokerkit.fakes.twspb;/' \
      -e 's#^option go_package = .*#option go_package = "github.com/brokerkit/brokerkit/fakes/internal/twspb";#' \
      -e 's#^import "\(.*\)";#import "twspb/\1";#' \
      "$ibapi/proto/$p.proto" >"$src/$p.proto"
done
files=()
for p in "${TWS_PROTOS[@]}"; do files+=("twspb/$p.proto"); done
mkdir -p "$tmp/gen" "$out"
protoc --proto_path="$tmp/src" --go_out=paths=source_relative:"$tmp/gen" "${files[@]}"
rm -f "$out"/*.pb.go
cp "$tmp"/gen/twspb/*.pb.go "$out"/
echo "regenerated $out from $(basename "$ibapi")/proto"
