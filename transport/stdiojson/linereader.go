package stdiojson

import (
	"bufio"
	"bytes"
	"io"
)

// lineReader reads newline-terminated lines of bounded length.
type lineReader struct {
	r      *bufio.Reader
	max    int
	prefix int // how much of an oversized line to keep, for peekID

	blocks [][]byte // a line longer than r's buffer, in pieces that are never copied to grow
	buf    []byte   // the last such line, assembled; dropped by release
}

// lineBlockMax caps the size of one piece of a long line: pieces double from
// the reader's buffer size up to it, so that a line costs about its size in
// pieces (never more than lineBlockMax over it) and as much again assembled.
const lineBlockMax = 8 << 20

func newLineReader(r io.Reader, max int) *lineReader {
	if max <= 0 {
		max = DefaultMaxLineBytes
	}
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max, prefix: 4 << 10}
}

// next returns the next line without its line ending. The slice is valid until
// the next call. A line longer than the limit is consumed whole and reported as
// errLineTooLong together with its first few KiB. A last line without a newline
// counts as a line; then next returns io.EOF.
//
// A line that fits the reader's buffer is returned in place. A longer one is
// gathered in pieces and assembled once, at its exact size: growing one buffer
// by append would allocate about five times the line.
func (lr *lineReader) next() ([]byte, error) {
	lr.buf = nil
	lr.blocks = lr.blocks[:0]
	n := 0 // bytes of the line read so far, up to max+2 (then tooLong)
	tooLong := false
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if err == nil && n == 0 && !tooLong {
			line := trimEOL(chunk)
			if len(line) > lr.max {
				return line[:min(len(line), lr.prefix)], errLineTooLong
			}
			return line, nil
		}
		if !tooLong {
			if n+len(chunk) > lr.max+2 {
				lr.appendLine(chunk[:min(max(0, lr.prefix-n), len(chunk))])
				tooLong = true
			} else {
				lr.appendLine(chunk)
			}
			n += len(chunk)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && (n > 0 || tooLong):
			// A final line without a newline; EOF comes on the next call.
		case err != nil:
			return nil, err
		}
		line := trimEOL(lr.assemble())
		if tooLong || len(line) > lr.max {
			return line[:min(len(line), lr.prefix)], errLineTooLong
		}
		return line, nil
	}
}

// appendLine adds p to the pieces of the line being read.
func (lr *lineReader) appendLine(p []byte) {
	for len(p) > 0 {
		k := len(lr.blocks) - 1
		if k < 0 || len(lr.blocks[k]) == cap(lr.blocks[k]) {
			size := 64 << 10
			if k >= 0 {
				size = min(2*cap(lr.blocks[k]), lineBlockMax)
			}
			lr.blocks = append(lr.blocks, make([]byte, 0, size))
			k++
		}
		b := lr.blocks[k]
		c := copy(b[len(b):cap(b)], p)
		lr.blocks[k] = b[:len(b)+c]
		p = p[c:]
	}
}

// assemble joins the pieces into one slice of the exact size and drops them.
func (lr *lineReader) assemble() []byte {
	if len(lr.blocks) == 1 {
		lr.buf = lr.blocks[0]
	} else {
		size := 0
		for _, b := range lr.blocks {
			size += len(b)
		}
		lr.buf = make([]byte, 0, size)
		for _, b := range lr.blocks {
			lr.buf = append(lr.buf, b...)
		}
	}
	clear(lr.blocks)
	lr.blocks = lr.blocks[:0]
	return lr.buf
}

// largeLine is the size of a line past which release gives memory back to the OS.
const largeLine = 4 << 20

// release drops the buffer of the last line, which the caller is done with, and
// reports whether it was large enough that its memory should be returned to the
// OS (a request line of 60 MB would otherwise stay part of the worker's RSS).
func (lr *lineReader) release() bool {
	large := cap(lr.buf) >= largeLine
	lr.buf = nil
	return large
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}
