package stdiojson

import (
	"context"
	"slices"
	"testing"
	"time"
)

// orderWorker is a worker in the shell that writes its answers compactly but
// with a member after "data", as PROTOCOL.md allows (it fixes no order of
// members): {"id":N,"status":"success","data":{...},"ib_code":0}.
const orderWorker = `
while IFS= read -r line; do
  id=$(printf '%s' "$line" | sed -n 's/^{"id":\([0-9]*\).*/\1/p')
  [ -n "$id" ] || continue
  case "$line" in
    *'"command":"hello"'*)
      printf '{"id":%s,"status":"success","data":{"protocol":1,"pid":%d,"events":true,"commands":["hello","get_accounts"]},"ib_code":0}\n' "$id" $$ ;;
    *'"command":"get_accounts"'*)
      printf '{"id":%s,"status":"success","data":{"accounts":["DU1","DU2"]},"ib_code":0}\n' "$id" ;;
    *)
      printf '{"id":%s,"status":"success","data":{},"ib_code":0}\n' "$id" ;;
  esac
done
`

// A success line whose "data" is not its last member is read like any other
// JSON object: the host's fast path, which takes "data" to run to the line's
// end, falls back to encoding/json when that reading does not decode.
func TestClientReadsMembersAfterData(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := Start(ctx, WithCommand("/bin/sh", "-c", orderWorker), WithGracePeriod(2*time.Second))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer c.Close()
	accts, err := c.Accounts(ctx)
	if err != nil || !slices.Equal(accts, []string{"DU1", "DU2"}) {
		t.Fatalf("Accounts = %v, %v; want [DU1 DU2]", accts, err)
	}
}
