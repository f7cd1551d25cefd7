// Package cms writes and reads the Cryptographic Message Syntax structures eFormidling
// uses (channels.md §1.9.1): EnvelopedData (and RFC 5083 AuthEnvelopedData) for one
// recipient identified by issuer and serial number, with RSAES-OAEP (SHA-256, MGF1-SHA-256)
// or RSAES-PKCS1-v1_5 key transport and AES-256-CBC or AES-256-GCM content encryption; and
// detached SignedData, the CAdES signature of an ASiC-E container.
//
// Encryption and decryption stream: payloads of a gigabyte pass through in 128 KiB pieces,
// and memory use does not depend on their size. Decryption accepts BER (indefinite lengths,
// constructed strings, as the reference and OpenSSL with -stream write) and DER. Everything
// read from outside is bounded: the header parts are read under a size cap, the content
// under DecryptOptions.MaxSize, and signatures under MaxSignatureSize.
//
// Errors callers branch on are sentinels: ErrMalformed, ErrUnsupported, ErrDecrypt,
// ErrAuthentication, ErrNoRecipient, ErrTooLarge, ErrSignatureInvalid, ErrDigestMismatch,
// ErrUntrustedSigner.
//
// cms imports nothing from the rest of the project.
package cms
