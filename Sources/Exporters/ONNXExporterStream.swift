// The memory behind the protobuf-c messages the exporter builds, and the sink that streams a
// packed message to a file.

import CProtobufC
import ONNXProto

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Owns every C allocation of one export: message structs, arrays and strings, freed together.
/// Tensor bytes are not copied in: messages point at the model's `TensorStorage`.
final class MessageArena {
  private var blocks: [UnsafeMutableRawPointer] = []
  private var unpacked: [UnsafeMutablePointer<ProtobufCMessage>] = []

  deinit {
    for block in blocks { free(block) }
    for message in unpacked { protobuf_c_message_free_unpacked(message, nil) }
  }

  /// `count` zeroed elements of `T`.
  func allocate<T>(_: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
    guard let block = calloc(max(count, 1), MemoryLayout<T>.stride) else { fatalError("out of memory") }
    blocks.append(block)
    return block.bindMemory(to: T.self, capacity: max(count, 1))
  }

  /// A message initialized by its protobuf-c `__init` function.
  func message<T>(_ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
    let message = allocate(T.self)
    initialize(message)
    return message
  }

  /// A NUL-terminated copy of `text`.
  func string(_ text: String) -> UnsafeMutablePointer<CChar> {
    let utf8 = Array(text.utf8)
    let copy = allocate(CChar.self, count: utf8.count + 1)
    for (i, byte) in utf8.enumerated() { copy[i] = CChar(bitPattern: byte) }
    return copy
  }

  /// A copy of `text`, or NULL (field absent) when it is empty.
  func optionalString(_ text: String) -> UnsafeMutablePointer<CChar>? {
    text.isEmpty ? nil : string(text)
  }

  /// An array of copies of `texts` for a repeated string field.
  func strings(_ texts: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
    guard !texts.isEmpty else { return nil }
    let array = allocate(UnsafeMutablePointer<CChar>?.self, count: texts.count)
    for (i, text) in texts.enumerated() { array[i] = string(text) }
    return array
  }

  /// A copy of `bytes` for a `bytes` field.
  func bytes(_ bytes: [UInt8]) -> ProtobufCBinaryData {
    guard !bytes.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
    let copy = allocate(UInt8.self, count: bytes.count)
    for (i, byte) in bytes.enumerated() { copy[i] = byte }
    return ProtobufCBinaryData(len: bytes.count, data: copy)
  }

  /// An array of pointers for a repeated message field (NULL when empty).
  func array<T>(_ items: [UnsafeMutablePointer<T>]) -> UnsafeMutablePointer<UnsafeMutablePointer<T>?>? {
    guard !items.isEmpty else { return nil }
    let array = allocate(UnsafeMutablePointer<T>?.self, count: items.count)
    for (i, item) in items.enumerated() { array[i] = item }
    return array
  }

  /// A copy of `values` for a repeated scalar field (NULL when empty).
  func scalars<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
    guard !values.isEmpty else { return nil }
    let array = allocate(T.self, count: values.count)
    for (i, value) in values.enumerated() { array[i] = value }
    return array
  }

  /// Keeps a message protobuf-c unpacked until the arena dies.
  func adoptUnpacked<T>(_ message: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<T> {
    unpacked.append(UnsafeMutableRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self))
    return message
  }
}

/// The protobuf-c view of a message struct (its first member is the `ProtobufCMessage` base).
func baseMessage<T>(_ message: UnsafeMutablePointer<T>) -> UnsafePointer<ProtobufCMessage> {
  UnsafePointer(UnsafeMutableRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self))
}

/// Buffered writes to a file descriptor; remembers the first error instead of throwing, because
/// it is fed from protobuf-c's C callback.
final class FileSink {
  let descriptor: Int32
  private(set) var errorCode: Int32 = 0
  private(set) var bytesWritten = 0
  private let buffer: UnsafeMutableRawPointer
  private let capacity = 1 << 20
  private var used = 0

  init(descriptor: Int32) {
    self.descriptor = descriptor
    buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
  }

  deinit { buffer.deallocate() }

  func append(_ data: UnsafeRawPointer?, _ count: Int) {
    guard count > 0, let data, errorCode == 0 else { return }
    bytesWritten += count
    if used + count <= capacity {
      (buffer + used).copyMemory(from: data, byteCount: count)
      used += count
      return
    }
    flush()
    if count < capacity {
      buffer.copyMemory(from: data, byteCount: count)
      used = count
    } else {
      writeAll(data, count)
    }
  }

  /// Appends `count` zero bytes.
  func appendZeros(_ count: Int) {
    var left = count
    let zeros = [UInt8](repeating: 0, count: 4096)
    zeros.withUnsafeBytes { z in
      while left > 0 {
        let n = min(left, z.count)
        append(z.baseAddress, n)
        left -= n
      }
    }
  }

  func flush() {
    guard used > 0 else { return }
    writeAll(buffer, used)
    used = 0
  }

  private func writeAll(_ data: UnsafeRawPointer, _ count: Int) {
    var done = 0
    while done < count, errorCode == 0 {
      let n = write(descriptor, data + done, count - done)
      if n > 0 {
        done += n
      } else if n < 0, errno == EINTR {
        continue
      } else {
        errorCode = n < 0 ? errno : EIO
      }
    }
  }

  /// Packs `message` into this sink through protobuf-c, one field at a time: tensor bytes go
  /// from the model's storage to the file without an intermediate copy.
  func pack(_ message: UnsafePointer<ProtobufCMessage>) {
    // A ProtobufCBuffer followed by a pointer back to this sink, which the callback reads.
    let headerSize = MemoryLayout<ProtobufCBuffer>.stride
    let raw = UnsafeMutableRawPointer.allocate(
      byteCount: headerSize + MemoryLayout<UnsafeMutableRawPointer>.stride,
      alignment: max(MemoryLayout<ProtobufCBuffer>.alignment, MemoryLayout<UnsafeMutableRawPointer>.alignment))
    defer { raw.deallocate() }
    let header = raw.bindMemory(to: ProtobufCBuffer.self, capacity: 1)
    header.initialize(
      to: ProtobufCBuffer(append: { buffer, count, data in
        guard let buffer else { return }
        let context = UnsafeMutableRawPointer(buffer).load(
          fromByteOffset: MemoryLayout<ProtobufCBuffer>.stride, as: UnsafeMutableRawPointer.self)
        Unmanaged<FileSink>.fromOpaque(context).takeUnretainedValue().append(data, count)
      }))
    (raw + headerSize).storeBytes(of: Unmanaged.passUnretained(self).toOpaque(), as: UnsafeMutableRawPointer.self)
    withExtendedLifetime(self) { _ = protobuf_c_message_pack_to_buffer(message, header) }
  }
}
