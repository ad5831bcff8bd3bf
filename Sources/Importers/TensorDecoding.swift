// TensorProto → Tensor: `raw_data` (adopted, not copied), the typed repeated fields (converted to
// little-endian raw bytes per onnx.proto's packing rules), external data files, and sparse
// initializers (made dense).

import CProtobufC
import Graph
import ONNXProto

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// An opened external data file.
struct ExternalFile {
  let descriptor: Int32
  let size: Int
}

extension ModelReader {
  /// Decodes a tensor; `what` names it in errors ("initializer 'w'"). Buffers are taken out of
  /// the message: decode each TensorProto once.
  func tensor(_ proto: UnsafeMutablePointer<Onnx__TensorProto>, _ what: String) throws(ImportError) -> Tensor {
    let p = proto.pointee
    guard p.segment == nil else { throw fail("\(what) is split into segments, which rebirth does not support") }
    let dtype = DType(rawValue: p.has_data_type != 0 ? p.data_type : 0)
    guard dtype != .undefined else { throw fail("\(what) has no data type") }
    let shape = try dims(scalars(p.dims, p.n_dims), what)
    guard let count = checkedElementCount(shape) else {
      throw fail("\(what): dims \(shape) overflow the element count")
    }
    var tensor: Tensor
    if p.has_data_location != 0, p.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
      tensor = try externalTensor(p, dtype: dtype, shape: shape, count: count, what)
    } else if dtype == .string {
      guard p.has_raw_data == 0 || p.raw_data.len == 0 else { throw fail("\(what) is a string tensor with raw_data") }
      let elements = scalars(p.string_data, p.n_string_data).map { byteArray($0) }
      guard let t = Tensor(strings: elements, shape: shape) else {
        throw fail(
          "\(what): data length mismatch: string_data holds \(elements.count) strings, dims \(shape) need \(count)")
      }
      tensor = t
    } else {
      let byteCount = try self.byteCount(dtype, count, shape, what)
      let storage: TensorStorage
      if p.has_raw_data != 0, p.raw_data.len > 0 || !hasTypedData(p) {
        guard p.raw_data.len == byteCount, byteCount == 0 || p.raw_data.data != nil else {
          throw fail(
            "\(what): data length mismatch: raw_data holds \(p.raw_data.len) bytes, dims \(shape) of \(dtype) need \(byteCount)"
          )
        }
        if let file = mappedFile, file.contains(p.raw_data.data) {
          // A view into the mapped file (RawDataViews.swift): the storage keeps the file mapped.
          storage = TensorStorage(adopting: UnsafeRawBufferPointer(start: p.raw_data.data, count: byteCount)) { _ in
            withExtendedLifetime(file) {}
          }
        } else {
          storage = adopt(p.raw_data.data, byteCount: byteCount)
        }
        proto.pointee.raw_data = ProtobufCBinaryData(len: 0, data: nil)
        proto.pointee.has_raw_data = 0
      } else {
        storage = try typedData(proto, dtype: dtype, count: count, byteCount: byteCount, shape: shape, what)
      }
      guard let t = Tensor(dtype: dtype, shape: shape, storage: storage) else {
        throw fail("\(what): data length mismatch for dims \(shape) of \(dtype)")
      }
      tensor = t
    }
    tensor.docString = text(p.doc_string)
    return tensor
  }

  private func dims(_ raw: UnsafeMutableBufferPointer<Int64>, _ what: String) throws(ImportError) -> [Int] {
    var shape: [Int] = []
    shape.reserveCapacity(raw.count)
    for d in raw {
      guard d >= 0 else { throw fail("\(what) has a negative dimension \(d)") }
      guard let dim = Int(exactly: d) else { throw fail("\(what): dimension \(d) overflows") }
      shape.append(dim)
    }
    return shape
  }

  /// Bytes `count` elements of `dtype` take in raw_data.
  private func byteCount(_ dtype: DType, _ count: Int, _ shape: [Int], _ what: String) throws(ImportError) -> Int {
    guard dtype.bitWidth != nil else {
      throw fail("\(what) has data type \(dtype), which rebirth does not support")
    }
    guard let bytes = dtype.byteCount(elements: count) else {
      throw fail("\(what): the byte size of dims \(shape) of \(dtype) overflows")
    }
    return bytes
  }

  private func hasTypedData(_ p: Onnx__TensorProto) -> Bool {
    p.n_float_data > 0 || p.n_int32_data > 0 || p.n_int64_data > 0 || p.n_double_data > 0 || p.n_uint64_data > 0
  }

  // MARK: Typed fields

  /// The data of a tensor stored in its typed repeated field. Where the field already holds the
  /// raw little-endian layout (float, int32, int64, double, uint64, complex) its buffer is adopted;
  /// otherwise the values are narrowed into a new buffer and the field is freed.
  private func typedData(
    _ proto: UnsafeMutablePointer<Onnx__TensorProto>, dtype: DType, count: Int, byteCount: Int, shape: [Int],
    _ what: String
  ) throws(ImportError) -> TensorStorage {
    let p = proto.pointee
    func check(_ field: String, _ have: Int, _ need: Int) throws(ImportError) {
      guard have == need else {
        let detail = have == 0 && !hasTypedData(p) ? "it has no data" : "\(field) holds \(have) values"
        throw fail("\(what): data length mismatch: \(detail), dims \(shape) of \(dtype) need \(need)")
      }
    }
    switch dtype {
    case .float, .complex64:
      try check("float_data", p.n_float_data, byteCount / 4)
      return take(&proto.pointee.float_data, &proto.pointee.n_float_data, byteCount: byteCount)
    case .double, .complex128:
      try check("double_data", p.n_double_data, byteCount / 8)
      return take(&proto.pointee.double_data, &proto.pointee.n_double_data, byteCount: byteCount)
    case .int64:
      try check("int64_data", p.n_int64_data, count)
      return take(&proto.pointee.int64_data, &proto.pointee.n_int64_data, byteCount: byteCount)
    case .uint64:
      try check("uint64_data", p.n_uint64_data, count)
      return take(&proto.pointee.uint64_data, &proto.pointee.n_uint64_data, byteCount: byteCount)
    case .uint32:
      try check("uint64_data", p.n_uint64_data, count)
      return narrow(&proto.pointee.uint64_data, &proto.pointee.n_uint64_data, to: UInt32.self)
    case .int32:
      try check("int32_data", p.n_int32_data, count)
      return take(&proto.pointee.int32_data, &proto.pointee.n_int32_data, byteCount: byteCount)
    default:
      // 16-, 8- and 4-bit types: one element per int32 (two per int32 for 4-bit types, packed
      // into its low byte), holding the element's bit pattern.
      guard let bits = dtype.bitWidth, bits <= 16 else {
        throw fail("\(what) has data type \(dtype), which rebirth does not support")
      }
      try check("int32_data", p.n_int32_data, bits == 16 ? count : byteCount)
      if bits == 16 { return narrow(&proto.pointee.int32_data, &proto.pointee.n_int32_data, to: UInt16.self) }
      return narrow(&proto.pointee.int32_data, &proto.pointee.n_int32_data, to: UInt8.self)
    }
  }

  /// Adopts a typed field's array as raw bytes (it already has the little-endian raw layout on
  /// little-endian machines) and detaches it from the message.
  private func take<T: FixedWidthIntegerOrFloat>(
    _ field: inout UnsafeMutablePointer<T>?, _ n: inout Int, byteCount: Int
  ) -> TensorStorage {
    // onnx.proto's typed fields and raw_data agree byte for byte on a little-endian host, the
    // only kind rebirth builds for (Linux and macOS on x86-64 and arm64).
    #if !_endian(little)
      #error("rebirth's ONNX importer assumes a little-endian host")
    #endif
    let storage = adopt(field.map { UnsafeMutableRawPointer($0) }, byteCount: byteCount)
    field = nil
    n = 0
    return storage
  }

  /// Narrows each value of a typed field to `Narrow`'s width (keeping the low bits), then frees
  /// the field.
  private func narrow<Wide: BinaryInteger, Narrow: FixedWidthInteger>(
    _ field: inout UnsafeMutablePointer<Wide>?, _ n: inout Int, to: Narrow.Type
  ) -> TensorStorage {
    let values = scalars(field, n)
    let storage = makeStorage(byteCount: values.count * MemoryLayout<Narrow>.size) { out in
      for (i, v) in values.enumerated() {
        out.storeBytes(
          of: Narrow(truncatingIfNeeded: v).littleEndian, toByteOffset: i * MemoryLayout<Narrow>.size, as: Narrow.self)
      }
    }
    free(field)
    field = nil
    n = 0
    return storage
  }

  // MARK: External data

  private func externalTensor(
    _ p: Onnx__TensorProto, dtype: DType, shape: [Int], count: Int, _ what: String
  ) throws(ImportError) -> Tensor {
    guard dtype != .string else { throw fail("\(what) is a string tensor stored as external data") }
    let byteCount = try self.byteCount(dtype, count, shape, what)
    var location: String?
    var offset = 0
    var length: Int?
    for entry in messages(p.external_data, p.n_external_data) {
      let value = text(entry.pointee.value)
      switch text(entry.pointee.key) {
      case "location": location = value
      case "offset":
        guard let v = Int(value), v >= 0 else { throw fail("\(what) has an invalid external data offset '\(value)'") }
        offset = v
      case "length":
        guard let v = Int(value), v >= 0 else { throw fail("\(what) has an invalid external data length '\(value)'") }
        length = v
      default: break
      }
    }
    guard let location, !location.isEmpty else { throw fail("\(what) has external data without a location") }
    if let length, length != byteCount {
      throw fail(
        "\(what): data length mismatch: external data length \(length), dims \(shape) of \(dtype) need \(byteCount)")
    }
    let file = try externalFile(location, what)
    let (end, overflow) = offset.addingReportingOverflow(byteCount)
    guard !overflow, end <= file.size else {
      throw fail(
        "\(what): external data at offset \(offset), length \(byteCount) lies past the end of '\(location)' (\(file.size) bytes)"
      )
    }
    let storage = try readStorage(file, offset: offset, byteCount: byteCount, location: location, what)
    guard let tensor = Tensor(dtype: dtype, shape: shape, storage: storage) else {
      throw fail("\(what): data length mismatch for dims \(shape) of \(dtype)")
    }
    return tensor
  }

  /// Opens (once) the external data file at `location`, which must stay inside the model's
  /// folder after symlinks are resolved.
  private func externalFile(_ location: String, _ what: String) throws(ImportError) -> ExternalFile {
    let escapes = fail("\(what): external data location '\(location)' escapes the model folder")
    if location.hasPrefix("/") { throw escapes }
    var depth = 0
    for component in location.split(separator: "/") where component != "." {
      depth += component == ".." ? -1 : 1
      if depth < 0 { throw escapes }
    }
    let folder = try modelFolder()
    guard let resolvedPointer = realpath(folder + "/" + location, nil) else {
      let code = errno
      if code == ENOENT || code == ENOTDIR { throw fail("\(what): external data file '\(location)' not found") }
      throw fail("\(what): cannot open external data file '\(location)': \(systemErrorText(code))")
    }
    let resolved = String(cString: resolvedPointer)
    free(resolvedPointer)
    guard resolved.hasPrefix(folder == "/" ? "/" : folder + "/") else { throw escapes }
    if let file = externalFiles[resolved] { return file }
    let fd = open(resolved, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      throw fail("\(what): cannot open external data file '\(location)': \(systemErrorText(errno))")
    }
    var info = stat()
    guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, let size = Int(exactly: info.st_size) else {
      _ = close(fd)
      throw fail("\(what): external data file '\(location)' is not a regular file")
    }
    let file = ExternalFile(descriptor: fd, size: size)
    externalFiles[resolved] = file
    return file
  }

  /// The folder of the model file, symlinks resolved.
  private func modelFolder() throws(ImportError) -> String {
    if let resolvedFolder { return resolvedFolder }
    var folder = "."
    if let slash = path.lastIndex(of: "/") {
      folder = slash == path.startIndex ? "/" : String(path[..<slash])
    }
    guard let resolvedPointer = realpath(folder, nil) else {
      throw fail("cannot resolve the model folder '\(folder)': \(systemErrorText(errno))")
    }
    let resolved = String(cString: resolvedPointer)
    free(resolvedPointer)
    resolvedFolder = resolved
    return resolved
  }

  private func readStorage(
    _ file: ExternalFile, offset: Int, byteCount: Int, location: String, _ what: String
  ) throws(ImportError) -> TensorStorage {
    var failure: Int32 = 0
    let storage = makeStorage(byteCount: byteCount) { out in
      var done = 0
      while done < byteCount {
        let n = pread(file.descriptor, out + done, byteCount - done, off_t(offset + done))
        if n > 0 {
          done += n
        } else if n == 0 {
          failure = EIO
          return
        } else if errno != EINTR {
          failure = errno
          return
        }
      }
    }
    guard failure == 0 else {
      throw fail("\(what): cannot read external data file '\(location)': \(systemErrorText(failure))")
    }
    return storage
  }

  // MARK: Sparse initializers

  /// A sparse initializer as a dense tensor named after its `values`: zeros except at `indices`
  /// (linear indices of shape [NNZ], or coordinates of shape [NNZ, rank]).
  func denseTensor(
    fromSparse s: UnsafeMutablePointer<Onnx__SparseTensorProto>
  ) throws(ImportError) -> (name: String, tensor: Tensor) {
    guard let valuesProto = s.pointee.values else { throw fail("a sparse initializer has no values") }
    let name = text(valuesProto.pointee.name)
    let what = "sparse initializer '\(name)'"
    let values = try tensor(valuesProto, what + " values")
    let shape = try dims(scalars(s.pointee.dims, s.pointee.n_dims), what)
    guard let count = checkedElementCount(shape) else {
      throw fail("\(what): dims \(shape) overflow the element count")
    }
    guard let bits = values.dtype.bitWidth, bits >= 8, case .raw = values.payload else {
      throw fail("\(what) has data type \(values.dtype), which rebirth does not support in sparse form")
    }
    let width = bits / 8
    let byteCount = try self.byteCount(values.dtype, count, shape, what)
    let nnz = values.elementCount
    var linear: [Int] = []
    if nnz > 0 {
      guard let indicesProto = s.pointee.indices else { throw fail("\(what) has no indices") }
      let indices = try tensor(indicesProto, what + " indices")
      linear = try linearIndices(indices, nnz: nnz, shape: shape, count: count, what)
    }
    // calloc: zeroed pages are only committed where values land, and a size the machine cannot
    // provide is an error rather than a trap.
    guard let dense = calloc(max(byteCount, 1), 1) else {
      throw fail("\(what): cannot allocate \(byteCount) bytes for its dense form")
    }
    let source = values.rawBytes
    if let base = source.baseAddress, source.count >= linear.count * width {
      for (k, index) in linear.enumerated() {
        (dense + index * width).copyMemory(from: base + k * width, byteCount: width)
      }
    }
    let storage = adopt(dense, byteCount: byteCount)
    guard let tensor = Tensor(dtype: values.dtype, shape: shape, storage: storage) else {
      throw fail("\(what): data length mismatch for dims \(shape)")
    }
    return (name, tensor)
  }

  private func linearIndices(
    _ indices: Tensor, nnz: Int, shape: [Int], count: Int, _ what: String
  ) throws(ImportError) -> [Int] {
    guard indices.dtype == .int64, let raw = indices.int64s else { throw fail("\(what): indices must be int64") }
    let rank = shape.count
    let coordinates = indices.shape.count == 2
    guard (indices.shape == [nnz]) || (coordinates && indices.shape == [nnz, rank]) else {
      throw fail("\(what): indices of shape \(indices.shape) do not fit \(nnz) values of rank \(rank)")
    }
    var result: [Int] = []
    result.reserveCapacity(nnz)
    for k in 0..<nnz {
      var index = 0
      if coordinates {
        for axis in 0..<rank {
          let c = raw[k * rank + axis]
          guard c >= 0, c < shape[axis] else { throw fail("\(what): index \(c) out of range on axis \(axis)") }
          index = index * shape[axis] + Int(c)
        }
      } else {
        guard raw[k] >= 0, raw[k] < count else { throw fail("\(what): index \(raw[k]) out of range") }
        index = Int(raw[k])
      }
      result.append(index)
    }
    return result
  }
}

// MARK: - Storage

/// Adopts a malloc'd buffer (from protobuf-c) as tensor storage, released with free().
func adopt(_ base: UnsafeMutableRawPointer?, byteCount: Int) -> TensorStorage {
  guard let base, byteCount > 0 else {
    if let base { free(base) }
    return TensorStorage(copying: UnsafeRawBufferPointer(start: nil, count: 0))
  }
  return TensorStorage(adopting: UnsafeRawBufferPointer(start: base, count: byteCount)) { bytes in
    free(UnsafeMutableRawPointer(mutating: bytes.baseAddress))
  }
}

/// New 64-byte-aligned storage of `byteCount` bytes, filled by `fill`.
func makeStorage(byteCount: Int, _ fill: (UnsafeMutableRawPointer) -> Void) -> TensorStorage {
  let memory = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
  fill(memory)
  return TensorStorage(adopting: UnsafeRawBufferPointer(start: memory, count: byteCount)) { bytes in
    UnsafeMutableRawPointer(mutating: bytes.baseAddress)?.deallocate()
  }
}

func systemErrorText(_ code: Int32) -> String {
  guard let text = strerror(code) else { return "error \(code)" }
  return String(cString: text)
}

/// The scalar types of TensorProto's typed fields that share raw_data's layout.
protocol FixedWidthIntegerOrFloat {}
extension Float: FixedWidthIntegerOrFloat {}
extension Double: FixedWidthIntegerOrFloat {}
extension Int32: FixedWidthIntegerOrFloat {}
extension Int64: FixedWidthIntegerOrFloat {}
extension UInt64: FixedWidthIntegerOrFloat {}
