#include "weights/torch_state_dict.h"

#include <cstring>
#include <memory>
#include <vector>

#include "common/check.h"
#include "weights/zip_archive.h"

namespace mlprt::weights {
namespace {

// One pickled value. Only what a state_dict holds is modelled; anything else is refused.
struct Value {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor };
  Kind kind = Kind::kNone;
  int64_t i = 0;
  double f = 0;
  std::string s;  ///< string; "module.name" of a global; a storage's key
  std::vector<std::shared_ptr<Value>> items;  ///< tuple / list; dict as key, value, key, value
  DataType dtype = DataType::kFloat32;        ///< storage and tensor
  std::shared_ptr<Value> storage;             ///< tensor
  int64_t offset = 0;                         ///< tensor: storage offset in elements
  Dims sizes, strides;                        ///< tensor
};
using ValuePtr = std::shared_ptr<Value>;

constexpr size_t kMaxStack = 1 << 20;

struct StorageType {
  const char* name;
  DataType dtype;
};
constexpr StorageType kStorages[] = {
    {"torch.FloatStorage", DataType::kFloat32}, {"torch.HalfStorage", DataType::kFloat16},
    {"torch.BFloat16Storage", DataType::kBFloat16}, {"torch.DoubleStorage", DataType::kFloat64},
    {"torch.LongStorage", DataType::kInt64}, {"torch.IntStorage", DataType::kInt32},
    {"torch.CharStorage", DataType::kInt8}, {"torch.ByteStorage", DataType::kUInt8},
    {"torch.BoolStorage", DataType::kBool}};

class Unpickler {
 public:
  Unpickler(std::span<const uint8_t> bytes, std::string where) : m_bytes(bytes), m_where(std::move(where)) {}

  Result<ValuePtr> run() {
    while (true) {
      MLPRT_ASSIGN_OR_RETURN(std::span<const uint8_t> op_byte, take(1));
      const uint8_t op = op_byte[0];
      if (op == '.') {
        if (m_stack.size() != 1) return bad("STOP with " + std::to_string(m_stack.size()) + " values on the stack");
        return m_stack.back();
      }
      MLPRT_RETURN_IF_ERROR(step(op));
      if (m_stack.size() > kMaxStack) return bad("the stack grows past " + std::to_string(kMaxStack) + " values");
    }
  }

 private:
  Status bad(const std::string& what) const {
    return make_error(StatusCode::kCorruptData, m_where, ": ", what, " (at byte ", m_pos, ")");
  }
  Status unsupported(const std::string& what) const {
    return make_error(StatusCode::kUnsupported, m_where, ": ", what,
                      "; mlprt reads state_dicts of tensors saved with torch.save(model.state_dict(), path)");
  }

  Result<std::span<const uint8_t>> take(size_t n) {
    if (n > m_bytes.size() - m_pos) return bad("truncated: needs " + std::to_string(n) + " more bytes");
    auto out = m_bytes.subspan(m_pos, n);
    m_pos += n;
    return out;
  }
  Result<uint64_t> le(size_t n) {
    MLPRT_ASSIGN_OR_RETURN(auto b, take(n));
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = v << 8 | b[i];
    return v;
  }
  Result<std::string> line() {
    const size_t start = m_pos;
    while (m_pos < m_bytes.size() && m_bytes[m_pos] != '\n') ++m_pos;
    if (m_pos == m_bytes.size()) return bad("truncated GLOBAL name");
    std::string out(reinterpret_cast<const char*>(m_bytes.data() + start), m_pos - start);
    ++m_pos;
    return out;
  }
  Result<ValuePtr> pop() {
    if (m_stack.size() <= floor()) return bad("pops from an empty stack");
    ValuePtr v = std::move(m_stack.back());
    m_stack.pop_back();
    return v;
  }
  size_t floor() const { return m_marks.empty() ? 0 : m_marks.back(); }
  Result<std::vector<ValuePtr>> pop_mark() {
    if (m_marks.empty()) return bad("no MARK to pop to");
    const size_t mark = m_marks.back();
    m_marks.pop_back();
    std::vector<ValuePtr> items(std::make_move_iterator(m_stack.begin() + static_cast<std::ptrdiff_t>(mark)),
                                std::make_move_iterator(m_stack.end()));
    m_stack.resize(mark);
    return items;
  }
  Result<ValuePtr> top() {
    if (m_stack.size() <= floor()) return bad("reads an empty stack");
    return m_stack.back();
  }
  void push(ValuePtr v) { m_stack.push_back(std::move(v)); }
  static ValuePtr make(Value::Kind kind) {
    auto v = std::make_shared<Value>();
    v->kind = kind;
    return v;
  }
  static ValuePtr make_int(int64_t i) {
    auto v = make(Value::Kind::kInt);
    v->i = i;
    return v;
  }
  Status memo_put(uint64_t key) {
    if (key > m_memo.size() + kMaxStack) return bad("memo index " + std::to_string(key) + " is implausible");
    MLPRT_ASSIGN_OR_RETURN(ValuePtr v, top());
    if (key >= m_memo.size()) m_memo.resize(key + 1);
    m_memo[key] = std::move(v);
    return Status::ok();
  }
  Status memo_get(uint64_t key) {
    if (key >= m_memo.size() || !m_memo[key]) return bad("memo index " + std::to_string(key) + " was never stored");
    push(m_memo[key]);
    return Status::ok();
  }
  Result<ValuePtr> tuple_of(std::vector<ValuePtr> items) {
    auto t = make(Value::Kind::kTuple);
    t->items = std::move(items);
    return t;
  }
  Status set_items(std::vector<ValuePtr> kv) {
    if (kv.size() % 2) return bad("SETITEMS with an odd number of values");
    MLPRT_ASSIGN_OR_RETURN(ValuePtr dict, top());
    if (dict->kind != Value::Kind::kDict) return bad("SETITEMS on something that is not a dict");
    for (auto& v : kv) dict->items.push_back(std::move(v));
    return Status::ok();
  }

  Result<ValuePtr> persistent_load(const ValuePtr& pid) {
    const auto& t = pid->items;
    if (pid->kind != Value::Kind::kTuple || t.size() != 5 || t[0]->kind != Value::Kind::kString ||
        t[0]->s != "storage" || t[1]->kind != Value::Kind::kGlobal || t[2]->kind != Value::Kind::kString ||
        t[4]->kind != Value::Kind::kInt) {
      return unsupported("a persistent id that is not ('storage', type, key, location, numel)");
    }
    auto storage = make(Value::Kind::kStorage);
    storage->s = t[2]->s;
    storage->i = t[4]->i;
    for (const StorageType& st : kStorages) {
      if (t[1]->s == st.name) {
        storage->dtype = st.dtype;
        return storage;
      }
    }
    return unsupported("storage type " + t[1]->s + " (supported: Float, Half, BFloat16, Double, Long, Int, Char, "
                       "Byte, Bool)");
  }

  Result<Dims> int_tuple(const ValuePtr& v, const char* what) {
    if (v->kind != Value::Kind::kTuple) return bad(std::string("tensor ") + what + " is not a tuple");
    Dims out;
    for (const ValuePtr& e : v->items) {
      if (e->kind != Value::Kind::kInt || e->i < 0) return bad(std::string("tensor ") + what + " has a non-integer or negative entry");
      out.push_back(e->i);
    }
    return out;
  }

  Result<ValuePtr> reduce(const ValuePtr& callable, const ValuePtr& args) {
    if (callable->kind != Value::Kind::kGlobal || args->kind != Value::Kind::kTuple) {
      return unsupported("a call of something that is not a global");
    }
    const std::string& f = callable->s;
    if (f == "collections.OrderedDict" || f == "builtins.dict") return make(Value::Kind::kDict);
    if ((f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") &&
        !args->items.empty() && args->items[0]->kind == Value::Kind::kTensor) {
      return args->items[0];
    }
    if (f == "torch._utils._rebuild_tensor_v2") {
      const auto& a = args->items;
      if (a.size() < 4 || a[0]->kind != Value::Kind::kStorage || a[1]->kind != Value::Kind::kInt || a[1]->i < 0) {
        return bad("_rebuild_tensor_v2 takes (storage, offset, size, stride, ...)");
      }
      auto t = make(Value::Kind::kTensor);
      t->storage = a[0];
      t->dtype = a[0]->dtype;
      t->offset = a[1]->i;
      MLPRT_ASSIGN_OR_RETURN(t->sizes, int_tuple(a[2], "size"));
      MLPRT_ASSIGN_OR_RETURN(t->strides, int_tuple(a[3], "stride"));
      if (t->sizes.size() != t->strides.size()) return bad("tensor size and stride have different lengths");
      return t;
    }
    return unsupported("it calls " + f);
  }

  Status step(uint8_t op) {
    switch (op) {
      case 0x80: return take(1).status();                  // PROTO
      case 0x95: return take(8).status();                  // FRAME
      case '}': push(make(Value::Kind::kDict)); return Status::ok();
      case ']': push(make(Value::Kind::kList)); return Status::ok();
      case ')': push(make(Value::Kind::kTuple)); return Status::ok();
      case '(': m_marks.push_back(m_stack.size()); return Status::ok();
      case 'N': push(make(Value::Kind::kNone)); return Status::ok();
      case 0x88:
      case 0x89: {
        auto v = make(Value::Kind::kBool);
        v->i = op == 0x88;
        push(v);
        return Status::ok();
      }
      case 'q': { MLPRT_ASSIGN_OR_RETURN(uint64_t k, le(1)); return memo_put(k); }
      case 'r': { MLPRT_ASSIGN_OR_RETURN(uint64_t k, le(4)); return memo_put(k); }
      case 0x94: return memo_put(m_memo.size());
      case 'h': { MLPRT_ASSIGN_OR_RETURN(uint64_t k, le(1)); return memo_get(k); }
      case 'j': { MLPRT_ASSIGN_OR_RETURN(uint64_t k, le(4)); return memo_get(k); }
      case 'K': { MLPRT_ASSIGN_OR_RETURN(uint64_t v, le(1)); push(make_int(static_cast<int64_t>(v))); return Status::ok(); }
      case 'M': { MLPRT_ASSIGN_OR_RETURN(uint64_t v, le(2)); push(make_int(static_cast<int64_t>(v))); return Status::ok(); }
      case 'J': {
        MLPRT_ASSIGN_OR_RETURN(uint64_t v, le(4));
        push(make_int(static_cast<int32_t>(static_cast<uint32_t>(v))));
        return Status::ok();
      }
      case 0x8a: {  // LONG1: n bytes, little-endian two's complement
        MLPRT_ASSIGN_OR_RETURN(uint64_t n, le(1));
        if (n > 8) return unsupported("an integer of " + std::to_string(n) + " bytes");
        MLPRT_ASSIGN_OR_RETURN(uint64_t v, le(n));
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);
        push(make_int(static_cast<int64_t>(v)));
        return Status::ok();
      }
      case 'G': {
        MLPRT_ASSIGN_OR_RETURN(auto b, take(8));
        uint64_t bits = 0;
        for (uint8_t x : b) bits = bits << 8 | x;  // big-endian
        auto v = make(Value::Kind::kFloat);
        std::memcpy(&v->f, &bits, 8);
        push(v);
        return Status::ok();
      }
      case 'X':
      case 0x8c: {
        MLPRT_ASSIGN_OR_RETURN(uint64_t n, le(op == 'X' ? 4 : 1));
        MLPRT_ASSIGN_OR_RETURN(auto b, take(n));
        auto v = make(Value::Kind::kString);
        v->s.assign(reinterpret_cast<const char*>(b.data()), b.size());
        push(v);
        return Status::ok();
      }
      case 'c': {
        MLPRT_ASSIGN_OR_RETURN(std::string module, line());
        MLPRT_ASSIGN_OR_RETURN(std::string name, line());
        auto v = make(Value::Kind::kGlobal);
        v->s = module + "." + name;
        push(v);
        return Status::ok();
      }
      case 0x93: {  // STACK_GLOBAL
        MLPRT_ASSIGN_OR_RETURN(ValuePtr name, pop());
        MLPRT_ASSIGN_OR_RETURN(ValuePtr module, pop());
        if (name->kind != Value::Kind::kString || module->kind != Value::Kind::kString) return bad("STACK_GLOBAL of non-strings");
        auto v = make(Value::Kind::kGlobal);
        v->s = module->s + "." + name->s;
        push(v);
        return Status::ok();
      }
      case 't': {
        MLPRT_ASSIGN_OR_RETURN(auto items, pop_mark());
        MLPRT_ASSIGN_OR_RETURN(ValuePtr t, tuple_of(std::move(items)));
        push(t);
        return Status::ok();
      }
      case 0x85:
      case 0x86:
      case 0x87: {
        std::vector<ValuePtr> items(static_cast<size_t>(op - 0x84));
        for (size_t i = items.size(); i-- > 0;) {
          MLPRT_ASSIGN_OR_RETURN(items[i], pop());
        }
        MLPRT_ASSIGN_OR_RETURN(ValuePtr t, tuple_of(std::move(items)));
        push(t);
        return Status::ok();
      }
      case 'a': {
        MLPRT_ASSIGN_OR_RETURN(ValuePtr v, pop());
        MLPRT_ASSIGN_OR_RETURN(ValuePtr list, top());
        if (list->kind != Value::Kind::kList) return bad("APPEND to something that is not a list");
        list->items.push_back(v);
        return Status::ok();
      }
      case 'e': {
        MLPRT_ASSIGN_OR_RETURN(auto items, pop_mark());
        MLPRT_ASSIGN_OR_RETURN(ValuePtr list, top());
        if (list->kind != Value::Kind::kList) return bad("APPENDS to something that is not a list");
        for (auto& v : items) list->items.push_back(std::move(v));
        return Status::ok();
      }
      case 's': {
        MLPRT_ASSIGN_OR_RETURN(ValuePtr value, pop());
        MLPRT_ASSIGN_OR_RETURN(ValuePtr key, pop());
        return set_items({key, value});
      }
      case 'u': {
        MLPRT_ASSIGN_OR_RETURN(auto kv, pop_mark());
        return set_items(std::move(kv));
      }
      case 'R':
      case 0x81: {  // REDUCE, NEWOBJ
        MLPRT_ASSIGN_OR_RETURN(ValuePtr args, pop());
        MLPRT_ASSIGN_OR_RETURN(ValuePtr callable, pop());
        MLPRT_ASSIGN_OR_RETURN(ValuePtr result, reduce(callable, args));
        push(result);
        return Status::ok();
      }
      case 'b': {  // BUILD: an OrderedDict's _metadata, a tensor's state: not needed
        MLPRT_ASSIGN_OR_RETURN(ValuePtr state, pop());
        MLPRT_ASSIGN_OR_RETURN(ValuePtr target, top());
        (void)state;
        if (target->kind != Value::Kind::kDict && target->kind != Value::Kind::kTensor) {
          return unsupported("BUILD of an object that is not a dict or tensor");
        }
        return Status::ok();
      }
      case 'Q': {
        MLPRT_ASSIGN_OR_RETURN(ValuePtr pid, pop());
        MLPRT_ASSIGN_OR_RETURN(ValuePtr storage, persistent_load(pid));
        push(storage);
        return Status::ok();
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        return unsupported(std::string("pickle opcode ") + hex);
      }
    }
  }

  std::span<const uint8_t> m_bytes;
  std::string m_where;
  size_t m_pos = 0;
  std::vector<ValuePtr> m_stack;
  std::vector<size_t> m_marks;
  std::vector<ValuePtr> m_memo;
};

Result<ir::Constant> tensor_data(const Value& t, const std::string& name, const ZipArchive& zip,
                                 const std::string& prefix, const std::string& source) {
  const std::string where = "'" + source + "': tensor '" + name + "'";
  // Row-major strides; a dim of size 1 may have any stride.
  int64_t expected = 1;
  for (size_t i = t.sizes.size(); i-- > 0;) {
    if (t.sizes[i] != 1 && t.strides[i] != expected) {
      return make_error(StatusCode::kUnsupported, where, " is not contiguous (size ", to_string(t.sizes),
                        ", stride ", to_string(t.strides), "); save tensor.contiguous() instead");
    }
    if (t.sizes[i] != 0 && expected > (int64_t{1} << 48) / t.sizes[i]) {
      return make_error(StatusCode::kCorruptData, where, " has an implausible size ", to_string(t.sizes));
    }
    expected *= t.sizes[i];
  }
  const std::string entry = prefix + "data/" + t.storage->s;
  const auto it = zip.entries.find(entry);
  if (it == zip.entries.end()) {
    return make_error(StatusCode::kCorruptData, where, ": its storage '", entry, "' is not in the archive");
  }
  const uint64_t es = element_size(t.dtype);
  const uint64_t storage_elements = it->second.size() / es;
  if (t.storage->i < 0 || static_cast<uint64_t>(t.storage->i) > storage_elements ||
      static_cast<uint64_t>(t.offset) + static_cast<uint64_t>(expected) > static_cast<uint64_t>(t.storage->i)) {
    return make_error(StatusCode::kCorruptData, where, ": ", expected, " elements at offset ", t.offset,
                      " do not fit its storage of ", t.storage->i, " elements (", it->second.size(), " bytes)");
  }
  ir::Constant c;
  c.dtype = t.dtype;
  c.dims = t.sizes;
  const auto* begin = reinterpret_cast<const std::byte*>(it->second.data()) + t.offset * es;
  c.data.assign(begin, begin + expected * static_cast<int64_t>(es));
  return c;
}

}  // namespace

Result<NamedTensors> read_torch_state_dict(std::span<const uint8_t> bytes, const std::string& source) {
  if (!looks_like_zip(bytes)) {
    if (bytes.size() >= 2 && bytes[0] == 0x80 && bytes[1] <= 5) {
      return make_error(StatusCode::kUnsupported, "'", source,
                        "' is a legacy (non-zip) torch.save file; mlprt reads the zip format torch >= 1.6 "
                        "writes by default: load it and save it again with torch.save");
    }
    return make_error(StatusCode::kCorruptData, "'", source,
                      "' is not a PyTorch file (torch.save writes a zip archive, starting with \"PK\")");
  }
  MLPRT_ASSIGN_OR_RETURN(ZipArchive zip, read_zip(bytes, source));
  std::string prefix;
  const std::span<const uint8_t>* pickle = nullptr;
  for (const auto& [name, data] : zip.entries) {
    const size_t slash = name.find('/');
    if (slash != std::string::npos && name.substr(slash + 1) == "data.pkl") {
      if (pickle) return make_error(StatusCode::kCorruptData, "'", source, "' holds two data.pkl entries");
      prefix = name.substr(0, slash + 1);
      pickle = &data;
    }
  }
  if (!pickle) return make_error(StatusCode::kCorruptData, "'", source, "' has no <archive>/data.pkl: not a torch.save file");
  if (auto it = zip.entries.find(prefix + "byteorder"); it != zip.entries.end()) {
    const std::string order(reinterpret_cast<const char*>(it->second.data()), it->second.size());
    if (order != "little") {
      return make_error(StatusCode::kUnsupported, "'", source, "' was saved on a ", order,
                        "-endian machine; mlprt reads little-endian files");
    }
  }
  Unpickler unpickler(*pickle, "'" + source + "' (" + prefix + "data.pkl)");
  MLPRT_ASSIGN_OR_RETURN(ValuePtr root, unpickler.run());
  if (root->kind != Value::Kind::kDict) {
    return make_error(StatusCode::kUnsupported, "'", source,
                      "' holds no dict; save model.state_dict() with torch.save");
  }
  NamedTensors out;
  for (size_t i = 0; i + 1 < root->items.size(); i += 2) {
    const Value& key = *root->items[i];
    const Value& value = *root->items[i + 1];
    if (key.kind != Value::Kind::kString) {
      return make_error(StatusCode::kUnsupported, "'", source, "' has a key that is not a string");
    }
    if (value.kind != Value::Kind::kTensor) {
      return make_error(StatusCode::kUnsupported, "'", source, "': entry '", key.s,
                        "' is not a tensor (a training checkpoint?); save model.state_dict() itself");
    }
    MLPRT_ASSIGN_OR_RETURN(ir::Constant c, tensor_data(value, key.s, zip, prefix, source));
    out[key.s] = std::move(c);
  }
  return out;
}

}  // namespace mlprt::weights
