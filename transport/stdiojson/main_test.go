package stdiojson

import (
	"context"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/brokerkit/brokerkit/broker"
)

// envTestMode tells a re-executed test binary what to be (go-plugin's
// helperProcess pattern): "" a test run; "mem" a worker serving a memBroker
// (through MaybeRunWorker, i.e. WithSelf); "stubborn" a worker that ignores its stdin closing and SIGTERM;
// "exit" a process that exits at once; "host" a host that starts a "mem" worker,
// prints its pid and waits to be killed.
const envTestMode = "STDIOJSON_TEST_MODE"

// envTestPositions is the number of positions a "mem" worker holds.
const envTestPositions = "STDIOJSON_TEST_POSITIONS"

func TestMain(m *testing.M) {
	switch os.Getenv(envTestMode) {
	case "":
	case "exit":
		os.Exit(3)
	case "stubborn":
		stubborn()
	case "host":
		os.Exit(runTestHost())
	default:
		if newBroker, ok := workerModes[os.Getenv(envTestMode)]; ok {
			MaybeRunWorker(newBroker)
		}
		os.Stderr.WriteString("unknown " + envTestMode + " or " + EnvWorker + " not set\n")
		os.Exit(2)
	}
	goleak.VerifyTestMain(m)
}

// workerModes are the Brokers a re-executed test binary can serve; other test
// files add theirs in init.
var workerModes = map[string]func() broker.Broker{
	"mem": func() broker.Broker {
		n, _ := strconv.Atoi(os.Getenv(envTestPositions))
		return newMemBroker(n)
	},
}

// runTestHost starts a mem worker, prints its pid and blocks until killed.
func runTestHost() int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, WithSelf(), WithEnv(envTestMode+"=mem", noRaceExitSleep))
	if err != nil {
		os.Stderr.WriteString("start: " + err.Error() + "\n")
		return 1
	}
	os.Stdout.WriteString(strconv.Itoa(c.Pid()) + "\n")
	select {} // the test kills us
}

// stubborn serves a memBroker but then neither exits at the end of its input
// nor on SIGTERM: only SIGKILL ends it.
func stubborn() {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	proto, _ := takeStdout()
	_ = Serve(context.Background(), newMemBroker(0), os.Stdin, proto)
	time.Sleep(time.Hour)
}
