package stdiojson

import (
	"bytes"
	"errors"
	"io"
)

// frameReader splits a stream into newline-terminated lines of bounded length,
// for both ends of the protocol. Its reads and its line splitting are separate
// steps, and an interrupted read (a read deadline) loses nothing: the Client's
// callers take turns reading the worker's output, and one of them may stop half
// way through a line. The worker reads its input with readLine.
//
// fill reads once, as much as the buffer takes; next then returns the complete
// lines one by one without reading, so that one read system call serves every
// answer it brought. A line that fills the buffer is gathered in pieces that are
// never copied to grow (growing one buffer would allocate up to four times the
// line), and assembled once, at its exact size, when its end arrives.
type frameReader struct {
	r      io.Reader
	max    int
	prefix int // how much of an oversized line to keep, for peekID
	buf    []byte
	start  int // first unconsumed byte
	end    int // end of the data read
	scan   int // bytes from start known to hold no newline

	pieces  [][]byte // the first parts of a line longer than buf, in order
	pieced  int      // their total length
	lastLen int      // length of the last line returned, for release

	skipping bool   // inside an oversized line, discarding up to its newline
	head     []byte // the first prefix bytes of that line
}

const frameReaderSize = 64 << 10

// lineBlockMax caps the size of one piece of a long line: pieces double from
// the buffer's size up to it, so that a line costs about its size in pieces
// (never more than lineBlockMax over it) and as much again assembled.
const lineBlockMax = 8 << 20

func newFrameReader(r io.Reader, max int) *frameReader {
	if max <= 0 {
		max = DefaultMaxLineBytes
	}
	return &frameReader{r: r, max: max, prefix: 4 << 10, buf: make([]byte, frameReaderSize)}
}

// next returns the next complete line without its line ending, and whether
// there was one. The slice is valid until the next call to fill. An oversized
// line is returned, once its end has been read, as its first few KiB with
// tooLong set.
func (fr *frameReader) next() (line []byte, tooLong, ok bool) {
	data := fr.buf[fr.start+fr.scan : fr.end]
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		fr.scan = fr.end - fr.start
		if fr.skipping {
			fr.start, fr.scan = fr.end, 0 // discard what there is of the long line
		}
		return nil, false, false
	}
	lineEnd := fr.start + fr.scan + i
	line = fr.buf[fr.start:lineEnd]
	fr.start, fr.scan = lineEnd+1, 0
	line, tooLong = fr.complete(line)
	return line, tooLong, true
}

// complete turns the last part of a line into the line: the head of an
// oversized one, or its pieces and tail assembled, without its "\r".
func (fr *frameReader) complete(tail []byte) (line []byte, tooLong bool) {
	if fr.skipping {
		fr.skipping = false
		fr.lastLen = fr.max + 1
		return bytes.TrimSuffix(fr.head, []byte("\r")), true
	}
	line = tail
	if len(fr.pieces) > 0 {
		line = make([]byte, 0, fr.pieced+len(tail))
		for _, p := range fr.pieces {
			line = append(line, p...)
		}
		line = append(line, tail...)
		clear(fr.pieces)
		fr.pieces, fr.pieced = fr.pieces[:0], 0
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	fr.lastLen = len(line)
	if len(line) > fr.max {
		return line[:min(len(line), fr.prefix)], true
	}
	return line, false
}

// fill reads once into the buffer, making room first: it moves the unconsumed
// bytes to the front, and when one line fills the buffer it sets the buffer
// aside as a piece of that line and reads on into a new one twice as large (up
// to lineBlockMax); past the line limit it keeps only the line's head and
// discards the rest. Once everything read has been consumed, a grown buffer is
// dropped for one of the initial size, so that one huge line does not stay in
// memory.
func (fr *frameReader) fill() error {
	if fr.start == fr.end && len(fr.pieces) == 0 {
		fr.start, fr.end, fr.scan = 0, 0, 0
		if len(fr.buf) > frameReaderSize {
			fr.buf = make([]byte, frameReaderSize) // a long line is done with: let its buffer go
		}
	} else if fr.end == len(fr.buf) {
		if fr.start > 0 {
			n := copy(fr.buf, fr.buf[fr.start:fr.end])
			fr.start, fr.end = 0, n
		}
		if fr.end == len(fr.buf) { // one line fills the buffer
			if fr.pieced+fr.end > fr.max+1 { // +1: a "\r" before the newline
				fr.head = fr.head[:0]
				for _, p := range append(fr.pieces, fr.buf[:fr.end]) {
					fr.head = append(fr.head, p[:min(len(p), fr.prefix-len(fr.head))]...)
				}
				clear(fr.pieces)
				fr.pieces, fr.pieced = fr.pieces[:0], 0
				fr.skipping = true
				fr.start, fr.end, fr.scan = 0, 0, 0
			} else {
				fr.pieces = append(fr.pieces, fr.buf[:fr.end])
				fr.pieced += fr.end
				fr.buf = make([]byte, min(2*len(fr.buf), max(lineBlockMax, len(fr.buf))))
				fr.start, fr.end, fr.scan = 0, 0, 0
			}
		}
	}
	n, err := fr.r.Read(fr.buf[fr.end:])
	fr.end += n
	if n > 0 && err == io.EOF {
		err = nil // reported by the next read
	}
	return err
}

// rest returns what is left of an unterminated last line once the input has
// ended (a last line without a newline counts as a line), and consumes it.
func (fr *frameReader) rest() (line []byte, tooLong, ok bool) {
	if !fr.skipping && fr.start == fr.end && len(fr.pieces) == 0 {
		return nil, false, false
	}
	tail := fr.buf[fr.start:fr.end]
	fr.start, fr.scan = fr.end, 0
	line, tooLong = fr.complete(tail)
	return line, tooLong, true
}

// readLine is the blocking form, for a reader nobody interrupts (the worker's
// input): it returns the next line without its line ending, valid until the
// next call. A line longer than the limit is consumed whole and reported as
// errLineTooLong together with its first few KiB. A last line without a newline
// counts as a line; then readLine returns io.EOF.
func (fr *frameReader) readLine() ([]byte, error) {
	for {
		if line, tooLong, ok := fr.next(); ok {
			return lineResult(line, tooLong)
		}
		if err := fr.fill(); err != nil {
			if errors.Is(err, io.EOF) {
				if line, tooLong, ok := fr.rest(); ok {
					return lineResult(line, tooLong)
				}
			}
			return nil, err
		}
	}
}

func lineResult(line []byte, tooLong bool) ([]byte, error) {
	if tooLong {
		return line, errLineTooLong
	}
	return line, nil
}

// buffered returns how many bytes have been read and not yet returned.
func (fr *frameReader) buffered() int { return fr.end - fr.start }

// largeLine is the size of a line past which release gives memory back to the OS.
const largeLine = 4 << 20

// release is called once the caller is done with the line just returned. If
// that line was large, the buffer it grew is replaced by one of the initial
// size (or of what is still buffered, if more), and release reports true, so
// that the caller can return the memory to the OS (a request line of 60 MB
// would otherwise stay part of the worker's RSS).
func (fr *frameReader) release() bool {
	if fr.lastLen < largeLine {
		return false
	}
	fr.lastLen = 0
	if len(fr.buf) > frameReaderSize {
		n := fr.end - fr.start
		buf := make([]byte, max(frameReaderSize, n))
		copy(buf, fr.buf[fr.start:fr.end])
		fr.buf, fr.start, fr.end, fr.scan = buf, 0, n, 0
	}
	return true
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}
