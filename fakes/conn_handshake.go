// A connection's handshake and START_API: version negotiation, the session's opening messages and handshake faults.

package fakes

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// handshake reads the client's version range and answers it; it reports
// whether to go on.
func (c *conn) handshake(br *bufio.Reader) bool {
	h, err := ReadHandshake(br)
	if err != nil {
		reason := ""
		switch {
		case errors.Is(err, errNoAPIPrefix):
			reason = "no API prefix"
		case errors.Is(err, broker.ErrProtocol):
			reason = "bad handshake: " + err.Error()
		case errors.Is(err, os.ErrDeadlineExceeded):
			reason = "handshake timeout"
		}
		if reason != "" {
			c.log.Warn("refusing client", "reason", reason)
		}
		c.update(func(r *ConnRecord) { r.Refused = reason })
		return false
	}
	c.update(func(r *ConnRecord) {
		r.ClientVersionMin, r.ClientVersionMax, r.ConnectOptions = h.MinVersion, h.MaxVersion, h.Options
	})
	if f := c.faults; f.StallHandshake || f.ShortHandshake || f.EmptyHandshake {
		_ = c.nc.SetReadDeadline(time.Time{}) // these faults hold the connection on purpose
	}
	switch {
	case c.faults.StallHandshake:
		c.log.Debug("fault: stalling the handshake")
		_, _ = io.Copy(io.Discard, br) // until the client or Close ends it
		return false
	case c.faults.CloseBeforeHandshake:
		c.log.Debug("fault: closing before the handshake reply")
		return false
	case c.faults.ShortHandshake, c.faults.EmptyHandshake:
		reply := EncodeFrame(itoa(min(c.version, h.MaxVersion)))
		if c.faults.EmptyHandshake {
			reply = []byte{0, 0, 0, 0}
		}
		c.log.Debug("fault: bad handshake reply", "reply", reply)
		if _, err := c.nc.Write(reply); err == nil {
			_, _ = io.Copy(io.Discard, br) // until the client or Close ends it
		}
		return false
	}
	v := min(c.version, h.MaxVersion)
	if v < h.MinVersion || v < MinServerVersion {
		reason := fmt.Sprintf("version range excludes %d", c.version)
		c.log.Warn("refusing client", "reason", reason, "client", h.String())
		c.update(func(r *ConnRecord) { r.Refused = reason })
		return false
	}
	c.negotiated.Store(int64(v))
	c.update(func(r *ConnRecord) { r.ServerVersion = v })
	// The reply is text at every version: the client reads it before it knows one.
	reply, err := AppendFrame(nil, itoa(v), time.Now().Format("20060102 15:04:05 MST"))
	return err == nil && c.sendBytes(reply) == nil
}

// startAPI reads START_API, admits or refuses the client id and sends the
// unprompted messages; it reports whether to go on.
func (c *conn) startAPI(br *bufio.Reader) bool {
	fields, err := c.readRequest(br)
	if err != nil {
		c.readFailed(err)
		return false
	}
	refuse := func(reason string) bool {
		c.log.Warn("refusing client", "reason", reason)
		c.update(func(r *ConnRecord) { r.Refused = reason })
		return false
	}
	if fields[0] != itoa(inStartAPI) {
		return refuse("expected START_API, got message " + fields[0])
	}
	var id int64
	if len(fields) >= 3 && fields[2] != "" {
		if id, err = strconv.ParseInt(fields[2], 10, 64); err != nil {
			return refuse(fmt.Sprintf("bad START_API: client id %q", fields[2]))
		}
	} else if len(fields) < 3 {
		return refuse("bad START_API: no client id")
	}
	c.g.mu.Lock()
	inUse := slices.Contains(c.faults.RefuseClientIDs, id)
	for _, o := range c.g.conns {
		inUse = inUse || (o != c && o.apiLive && o.rec.ClientID == id)
	}
	c.rec.ClientID = id
	if !inUse {
		c.apiLive = true
		c.rec.APIStarted = true
		c.g.started++
		c.g.broadcastLocked()
	}
	c.g.mu.Unlock()
	if inUse {
		refuse("client id in use")
		if c.sendError(-1, CodeClientIDInUse, NoticeText(CodeClientIDInUse)) == nil {
			c.sleep(duplicateIDLinger)
		}
		return false
	}
	c.log.Debug("API started", "client_id", id)
	start := time.Now()
	sc := c.g.currentScript()
	msgs := [][]string{
		managedAcctsFields(sc.Accounts),
		nextValidIDFields(c.g.nextOrderID(sc)),
	}
	for _, code := range []int64{CodeMarketDataFarmOK, CodeHistDataFarmOK, CodeSecDefDataFarmOK} {
		msgs = append(msgs, errorFields(int(c.negotiated.Load()), -1, code, NoticeText(code)))
	}
	for _, m := range msgs {
		if c.send(m...) != nil {
			return false
		}
	}
	if len(c.faults.Notices) > 0 {
		c.g.wg.Add(1)
		go c.noticeLoop(start, c.faults.Notices)
	}
	return true
}
