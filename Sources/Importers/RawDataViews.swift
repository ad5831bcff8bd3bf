// Zero-copy weights: the large `raw_data` of a mapped model's initializers stay in the mapping.
//
// protobuf-c copies every bytes field it unpacks. For a 100 MB model that copy (into fresh
// memory the kernel must first zero) was a third of `rebirth optimize --passes none`. So before
// unpacking, the wire bytes are rewritten into a small skeleton in which each large `raw_data`
// of `ModelProto.graph.initializer` is empty, and the importer then points those tensors at their
// bytes in the mapped file. The file stays mapped while any tensor uses it.

/// Where one initializer's `raw_data` lies in the file.
struct RawDataView {
  /// The initializer's position in `GraphProto.initializer` (protobuf-c keeps the order).
  let initializer: Int
  /// Offset and length of the bytes in the file.
  let offset: Int
  let count: Int
}

enum RawDataViews {
  /// `raw_data` shorter than this is left in the skeleton (copying it costs nothing).
  static let minimumBytes = 64 << 10

  /// The serialized model `bytes` with every `raw_data` of at least `minimum` bytes in an
  /// initializer of the main graph emptied (its field kept, with length 0), and where each was.
  /// Nil when nothing qualifies or the layout is not the plain one this handles (the main graph
  /// field more than once, a tensor with two `raw_data` fields, anything malformed): the caller
  /// then unpacks `bytes` as they are, and protobuf-c or the pre-scan reports any damage.
  static func skeleton(of bytes: UnsafeRawBufferPointer, minimum: Int = minimumBytes) -> (
    skeleton: [UInt8], views: [RawDataView]
  )? {
    var reader = WireReader(bytes: bytes)
    var views: [RawDataView] = []
    var out: [UInt8] = []
    out.reserveCapacity(1 << 16)
    var graphs = 0
    // ModelProto: every field verbatim but `graph` (7).
    while let field = reader.next(end: bytes.count) {
      guard let field else { return nil }
      if field.number == 7 && field.wireType == 2 {
        graphs += 1
        guard graphs == 1, let graph = graphSkeleton(&reader, field, minimum: minimum, views: &views) else { return nil }
        appendLengthDelimited(&out, tag: field.tag, graph)
      } else {
        out.append(contentsOf: reader.bytes[field.start..<field.end])
      }
    }
    return views.isEmpty ? nil : (out, views)
  }

  /// GraphProto: every field verbatim but `initializer` (5), whose tensors lose large raw_data.
  private static func graphSkeleton(
    _ reader: inout WireReader, _ graph: WireField, minimum: Int, views: inout [RawDataView]
  ) -> [UInt8]? {
    var out: [UInt8] = []
    var inner = WireReader(bytes: reader.bytes, position: graph.payload)
    var initializer = 0
    while let field = inner.next(end: graph.end) {
      guard let field else { return nil }
      if field.number == 5 && field.wireType == 2 {
        guard let tensor = tensorSkeleton(field, index: initializer, minimum: minimum, in: reader.bytes, views: &views)
        else { return nil }
        appendLengthDelimited(&out, tag: field.tag, tensor)
        initializer += 1
      } else {
        out.append(contentsOf: reader.bytes[field.start..<field.end])
      }
    }
    return out
  }

  /// TensorProto: every field verbatim but a large `raw_data` (9), which becomes empty.
  private static func tensorSkeleton(
    _ tensor: WireField, index: Int, minimum: Int, in bytes: UnsafeRawBufferPointer, views: inout [RawDataView]
  ) -> [UInt8]? {
    var out: [UInt8] = []
    var inner = WireReader(bytes: bytes, position: tensor.payload)
    var rawData = 0
    while let field = inner.next(end: tensor.end) {
      guard let field else { return nil }
      if field.number == 9 && field.wireType == 2 {
        rawData += 1
        guard rawData == 1 else { return nil }
        let count = field.end - field.payload
        if count >= minimum {
          views.append(RawDataView(initializer: index, offset: field.payload, count: count))
          appendLengthDelimited(&out, tag: field.tag, [])
          continue
        }
      }
      out.append(contentsOf: bytes[field.start..<field.end])
    }
    return out
  }

  private static func appendLengthDelimited(_ out: inout [UInt8], tag: UInt64, _ payload: [UInt8]) {
    appendVarint(&out, tag)
    appendVarint(&out, UInt64(payload.count))
    out.append(contentsOf: payload)
  }

  private static func appendVarint(_ out: inout [UInt8], _ value: UInt64) {
    var v = value
    while v >= 0x80 {
      out.append(UInt8(truncatingIfNeeded: v) | 0x80)
      v >>= 7
    }
    out.append(UInt8(v))
  }
}

/// One field of a message: its tag, and where its bytes, and for length-delimited fields its
/// payload, lie.
struct WireField {
  let tag: UInt64
  var number: UInt64 { tag >> 3 }
  var wireType: UInt64 { tag & 7 }
  /// The whole field (tag included), and where its payload starts (length-delimited) .
  let start: Int, end: Int, payload: Int
}

/// Reads the fields of a message one by one, bounds-checked.
struct WireReader {
  let bytes: UnsafeRawBufferPointer
  var position = 0

  /// The next field before `end`; nil at `end`, `.some(nil)` when the bytes are malformed.
  mutating func next(end: Int) -> WireField?? {
    guard position < end else { return nil }
    let start = position
    guard let tag = try? ProtoWire.readVarint(bytes, &position, end: end), tag >> 3 != 0 else { return .some(nil) }
    switch tag & 7 {
    case 0:
      guard (try? ProtoWire.readVarint(bytes, &position, end: end)) != nil else { return .some(nil) }
      return WireField(tag: tag, start: start, end: position, payload: position)
    case 1, 5:
      let size = tag & 7 == 1 ? 8 : 4
      guard end - position >= size else { return .some(nil) }
      position += size
      return WireField(tag: tag, start: start, end: position, payload: position)
    case 2:
      guard let length = try? ProtoWire.readVarint(bytes, &position, end: end), length <= UInt64(end - position) else {
        return .some(nil)
      }
      let payload = position
      position += Int(length)
      return WireField(tag: tag, start: start, end: position, payload: payload)
    default:
      return .some(nil)
    }
  }
}
