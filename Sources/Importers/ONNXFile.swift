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
  /// the file, so nothing here refers to the file's mapping.
  public let pointer: UnsafeMutablePointer<Onnx__ModelProto>

  /// Takes ownership of `pointer`, which must come from `onnx__model_proto__unpack`
  /// with the default allocator.
  public init(owning pointer: UnsafeMutablePointer<Onnx__ModelProto>) {
    self.pointer = pointer
  }

  deinit {
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
    defer { contents.release() }
    return try unpack(contents.bytes, path: path, depthLimit: depthLimit)
  }

  /// Checks and unpacks a serialized ModelProto held in memory. `path` only
  /// labels errors.
  public static func unpack(
    _ bytes: UnsafeRawBufferPointer, path: String = "<memory>",
    depthLimit: Int = ProtoWire.defaultDepthLimit
  ) throws(ImportError) -> ONNXModelProto {
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
    return ONNXModelProto(owning: model)
  }
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
      if let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
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
