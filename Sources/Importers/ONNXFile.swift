// Reading an .onnx file into protobuf-c's unpacked Onnx__ModelProto, safely:
// the bytes are pre-scanned by ProtoWire so that protobuf-c's recursive
// unpacker never sees nesting deep enough to overflow the stack.

import CProtobufC
import ONNXProto

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A model file could not be imported. `description` is "path: message".
public struct ImportError: Error, CustomStringConvertible, Sendable {
  public var path: String
  public var message: String

  public init(path: String, message: String) {
    self.path = path
    self.message = message
  }

  public var description: String { "\(path): \(message)" }
}

/// An unpacked ONNX ModelProto, owned: freed with protobuf-c when this object dies.
///
/// Pointers reached through `pointer` (graphs, nodes, strings, tensor bytes)
/// are valid only while this object is alive; use `withExtendedLifetime` when
/// the object is not otherwise used after them. Not Sendable: it wraps a
/// mutable C structure; convert it on the task that loaded it.
public final class ONNXModelProto {
  /// The unpacked message. protobuf-c copied every string and bytes field out of
  /// the file, except the large `raw_data` of the main graph's initializers, which
  /// may point into `file` (see RawDataViews.swift).
  public let pointer: UnsafeMutablePointer<Onnx__ModelProto>
  /// The mapped file the views point into, if any.
  let file: MappedModelFile?
  /// The initializers whose `raw_data` points into `file`.
  private let views: [RawDataView]

  /// Takes ownership of `pointer`, which must come from `onnx__model_proto__unpack`
  /// with the default allocator.
  public convenience init(owning pointer: UnsafeMutablePointer<Onnx__ModelProto>) {
    self.init(owning: pointer, file: nil, views: [])
  }

  private init(owning pointer: UnsafeMutablePointer<Onnx__ModelProto>, file: MappedModelFile?, views: [RawDataView]) {
    self.pointer = pointer
    self.file = file
    self.views = views
  }

  deinit {
    // Views still in the message (not taken by a tensor) belong to the mapping, not to protobuf-c.
    if let file, let graph = pointer.pointee.graph {
      for view in views where view.initializer < graph.pointee.n_initializer {
        guard let tensor = graph.pointee.initializer[view.initializer] else { continue }
        if file.contains(tensor.pointee.raw_data.data) { tensor.pointee.raw_data = ProtobufCBinaryData(len: 0, data: nil) }
      }
    }
    onnx__model_proto__free_unpacked(pointer, nil)
  }

  /// Reads, checks and unpacks the ONNX model file at `path`.
  ///
  /// The file is mapped read-only (or read, when it cannot be mapped, for
  /// instance a pipe), pre-scanned with `ProtoWire.maxMessageDepth(_:limit:)`,
  /// unpacked, and unmapped. External tensor data is not touched.
  public static func load(
    path: String, depthLimit: Int = ProtoWire.defaultDepthLimit
  ) throws(ImportError) -> ONNXModelProto {
    let contents = try FileContents(path: path)
    guard contents.mapped, let (skeleton, views) = RawDataViews.skeleton(of: contents.bytes) else {
      defer { contents.release() }
      return try unpack(contents.bytes, path: path, depthLimit: depthLimit)
    }
    let file = MappedModelFile(contents)
    let unpacked = skeleton.withUnsafeBytes { bytes in
      Result { () throws(ImportError) in try unpackMessage(bytes, path: path, depthLimit: depthLimit) }
    }
    // Errors are reported from the file itself (offsets in the skeleton would mislead).
    guard case .success(let message) = unpacked else { return try unpack(file.bytes, path: path, depthLimit: depthLimit) }
    // Point each emptied raw_data at its bytes in the file; if the unpacked message does not
    // line up with the skeleton (it always should), unpack the file as it is instead.
    guard let graph = message.pointee.graph,
      views.allSatisfy({ view in
        view.initializer < graph.pointee.n_initializer
          && graph.pointee.initializer[view.initializer].map {
            $0.pointee.has_raw_data != 0 && $0.pointee.raw_data.len == 0
          } == true
      })
    else {
      onnx__model_proto__free_unpacked(message, nil)
      return try unpack(file.bytes, path: path, depthLimit: depthLimit)
    }
    for view in views {
      let tensor = graph.pointee.initializer[view.initializer]!
      let data = UnsafeMutableRawPointer(mutating: file.bytes.baseAddress!).advanced(by: view.offset)
      tensor.pointee.raw_data = ProtobufCBinaryData(len: view.count, data: data.assumingMemoryBound(to: UInt8.self))
    }
    return ONNXModelProto(owning: message, file: file, views: views)
  }

  /// Checks and unpacks a serialized ModelProto held in memory. `path` only
  /// labels errors.
  public static func unpack(
    _ bytes: UnsafeRawBufferPointer, path: String = "<memory>",
    depthLimit: Int = ProtoWire.defaultDepthLimit
  ) throws(ImportError) -> ONNXModelProto {
    ONNXModelProto(owning: try unpackMessage(bytes, path: path, depthLimit: depthLimit))
  }

  /// `unpack`'s message, owned by the caller.
  private static func unpackMessage(
    _ bytes: UnsafeRawBufferPointer, path: String, depthLimit: Int
  ) throws(ImportError) -> UnsafeMutablePointer<Onnx__ModelProto> {
    if bytes.isEmpty { throw ImportError(path: path, message: "empty file") }
    do {
      _ = try ProtoWire.maxMessageDepth(bytes, limit: depthLimit)
    } catch {
      switch error {
      case .tooDeep(let depth):
        throw ImportError(
          path: path,
          message: "protobuf message nesting depth \(depth) exceeds the limit of \(depthLimit)"
        )
      case .malformed(let reason, let offset):
        throw ImportError(
          path: path, message: "not a valid ONNX protobuf (\(reason) at byte \(offset))")
      }
    }
    let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
    var allocator = hugePageAwareAllocator
    guard let model = onnx__model_proto__unpack(&allocator, bytes.count, base) else {
      throw ImportError(path: path, message: "not a valid ONNX protobuf")
    }
    return model
  }
}

/// A mapped model file that tensors may point into: unmapped when the last of them dies.
final class MappedModelFile: @unchecked Sendable {
  private let contents: FileContents
  var bytes: UnsafeRawBufferPointer { contents.bytes }

  fileprivate init(_ contents: FileContents) { self.contents = contents }

  /// Whether `pointer` points into the file.
  func contains(_ pointer: UnsafeRawPointer?) -> Bool {
    guard let pointer, let base = contents.bytes.baseAddress else { return false }
    return pointer >= base && pointer < base + contents.bytes.count
  }

  deinit { contents.release() }
}

/// The bytes of a file: mapped when possible, else read into a heap buffer.
private struct FileContents {
  let bytes: UnsafeRawBufferPointer
  let mapped: Bool

  init(path: String) throws(ImportError) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 {
      let code = errno
      throw ImportError(
        path: path, message: code == ENOENT ? "no such file" : "cannot open: \(errorText(code))")
    }
    defer { _ = close(fd) }

    var info = stat()
    guard fstat(fd, &info) == 0 else {
      throw ImportError(path: path, message: "cannot stat: \(errorText(errno))")
    }
    let kind = info.st_mode & S_IFMT
    if kind == S_IFDIR { throw ImportError(path: path, message: "is a directory") }

    if kind == S_IFREG {
      guard info.st_size > 0 else { throw ImportError(path: path, message: "empty file") }
      guard let size = Int(exactly: info.st_size) else {
        throw ImportError(path: path, message: "file too large")
      }
      // Populated: the pages are mapped in one pass (they are read through anyway, by the
      // unpacker or, for weights viewed in place, by the exporter), not fault by fault.
      #if os(Linux)
        let flags = MAP_PRIVATE | MAP_POPULATE
      #else
        let flags = MAP_PRIVATE
      #endif
      if let address = mmap(nil, size, PROT_READ, flags, fd, 0),
        address != UnsafeMutableRawPointer(bitPattern: -1)
      {
        bytes = UnsafeRawBufferPointer(start: address, count: size)
        mapped = true
        return
      }
    }
    // Not mappable (pipe, character device, odd file system): read to the end.
    bytes = try Self.readAll(fd, path: path, sizeHint: kind == S_IFREG ? Int(info.st_size) : 0)
    mapped = false
    if bytes.isEmpty {
      release()
      throw ImportError(path: path, message: "empty file")
    }
  }

  private static func readAll(
    _ fd: Int32, path: String, sizeHint: Int
  ) throws(ImportError) -> UnsafeRawBufferPointer {
    var capacity = max(sizeHint, 1 << 16)
    var count = 0
    guard var buffer = malloc(capacity) else {
      throw ImportError(path: path, message: "out of memory")
    }
    while true {
      if count == capacity {
        let (doubled, overflow) = capacity.multipliedReportingOverflow(by: 2)
        guard !overflow, let grown = realloc(buffer, doubled) else {
          free(buffer)
          throw ImportError(path: path, message: "out of memory")
        }
        buffer = grown
        capacity = doubled
      }
      let n = read(fd, buffer + count, capacity - count)
      if n > 0 {
        count += n
      } else if n == 0 {
        break
      } else if errno != EINTR {
        let code = errno
        free(buffer)
        throw ImportError(path: path, message: "cannot read: \(errorText(code))")
      }
    }
    return UnsafeRawBufferPointer(start: buffer, count: count)
  }

  func release() {
    guard let base = bytes.baseAddress else { return }
    if mapped {
      _ = munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
    } else {
      free(UnsafeMutableRawPointer(mutating: base))
    }
  }
}

private func errorText(_ code: Int32) -> String {
  guard let text = strerror(code) else { return "error \(code)" }
  return String(cString: text)
}

/// protobuf-c's allocator for unpacking, compatible with `free()` (what tensors adopting a
/// `raw_data` buffer, and `free_unpacked` with the default allocator, release with).
///
/// Buffers of 2 MiB and more (weights) are 2 MiB-aligned and marked for transparent huge pages
/// before protobuf-c copies into them: a 100 MB model then takes about fifty page faults instead of
/// 25 000, which was most of the import's time. Smaller ones come from malloc.
nonisolated(unsafe) private let hugePageAwareAllocator = ProtobufCAllocator(
  alloc: { _, size in
    let hugePage = 2 << 20
    guard size >= hugePage else { return malloc(max(size, 1)) }
    var memory: UnsafeMutableRawPointer?
    guard posix_memalign(&memory, hugePage, size) == 0, let memory else { return nil }
    #if os(Linux)
      _ = madvise(memory, size, MADV_HUGEPAGE)  // advice only; a kernel without THP ignores it
    #endif
    return memory
  },
  free: { _, pointer in free(pointer) },
  allocator_data: nil)
