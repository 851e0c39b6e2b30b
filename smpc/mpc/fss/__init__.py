"""Function secret sharing: a one-bit distributed comparison function (:mod:`.bit_dcf`) on fixed-key AES
(:mod:`.fixed_key`), and the dealer-assisted sign bit and x msb(x) of a masked value built on it (:mod:`.compare`)."""
