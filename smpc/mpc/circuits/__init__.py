"""Binary circuits on XOR-shared 64-bit words, for any protocol that supplies an AND: adders (:mod:`.adders`) and
the bit-sliced sign bit of a masked value (:mod:`.sign_bit`)."""
