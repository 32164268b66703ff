-- One record's fields (the store's _READ_FIELDS, packed; every field absent when there is no such service).
-- KEYS: 1 service hash.
return read(KEYS[1])
