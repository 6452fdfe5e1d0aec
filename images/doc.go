// Package images is the Lifeboat image file format: a writer that turns
// streams (disks, partitions) into compressed, optionally encrypted and
// split image files, and a reader that opens them for random access and
// verifies every byte. FORMAT.md documents the bytes. The package depends
// on nothing else in the project.
//
// Writing is streaming: the index and metadata go at the end, so an image
// can be written to a pipe (NewStreamWriter) or to files (Create, which
// writes under temporary names and renames on Commit). Reading is random
// access through io.ReaderAt (Open, OpenReaderAt).
//
// See Example for the smallest round trip.
package images
