int main() { return 1; }  // STUB: replaced by the example
