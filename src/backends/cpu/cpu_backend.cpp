// STUB: replaced by the cpu backend.
