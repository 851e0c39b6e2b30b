"""Function secret sharing: distributed comparison functions (:mod:`.dcf`) on fixed-key AES (:mod:`.fixed_key`),
and the dealer-assisted sign bit and ReLU of a masked value built on them (:mod:`.compare`)."""
