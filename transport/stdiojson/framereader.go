package stdiojson

import (
	"bytes"
	"io"
)

// frameReader splits a stream into lines like lineReader, but its reads and its
// line splitting are separate steps, and an interrupted read (a read deadline)
// loses nothing: the Client's callers take turns reading the worker's output,
// and one of them may stop half way through a line.
//
// fill reads once, as much as the buffer takes; next then returns the complete
// lines one by one without reading, so that one read system call serves every
// answer it brought.
type frameReader struct {
	r      io.Reader
	max    int
	prefix int // how much of an oversized line to keep, for peekID
	buf    []byte
	start  int // first unconsumed byte
	end    int // end of the data read
	scan   int // bytes from start known to hold no newline

	skipping bool   // inside an oversized line, discarding up to its newline
	head     []byte // the first prefix bytes of that line
}

const frameReaderSize = 64 << 10

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
	if fr.skipping {
		fr.skipping = false
		return bytes.TrimSuffix(fr.head, []byte("\r")), true, true
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > fr.max {
		return line[:min(len(line), fr.prefix)], true, true
	}
	return line, false, true
}

// fill reads once into the buffer, making room first: it moves the unconsumed
// bytes to the front, and grows the buffer for a line longer than it, up to the
// line limit, past which it keeps only the line's head and discards the rest.
// Once everything read has been consumed, a grown buffer is dropped for one of
// the initial size, so that one huge answer does not stay in the host's memory.
func (fr *frameReader) fill() error {
	if fr.start == fr.end {
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
			if fr.end > fr.max+1 { // +1: a "\r" before the newline
				fr.head = append(fr.head[:0], fr.buf[:fr.prefix]...)
				fr.skipping = true
				fr.start, fr.end, fr.scan = 0, 0, 0
			} else {
				grown := make([]byte, min(2*len(fr.buf), fr.max+2))
				copy(grown, fr.buf[:fr.end])
				fr.buf = grown
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
	if fr.skipping {
		fr.skipping = false
		return bytes.TrimSuffix(fr.head, []byte("\r")), true, true
	}
	if fr.start == fr.end {
		return nil, false, false
	}
	line = bytes.TrimSuffix(fr.buf[fr.start:fr.end], []byte("\r"))
	fr.start, fr.scan = fr.end, 0
	if len(line) > fr.max {
		return line[:min(len(line), fr.prefix)], true, true
	}
	return line, false, true
}
