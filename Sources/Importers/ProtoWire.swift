// Wire-format pre-scan of an ONNX ModelProto, run before protobuf-c unpacks it.
//
// protobuf-c's unpacker recurses once per nested message and has no depth limit,
// so a small crafted file (a few tens of KB of subgraphs nested through
// AttributeProto.g) overflows the stack inside onnx__model_proto__unpack.
// ProtoWire walks the bytes iteratively, with an explicit stack of message end
// offsets, descends only into the fields that onnx.proto declares as messages,
// and reports the deepest nesting it saw, or refuses the input.

/// Why `ProtoWire.maxMessageDepth` refused its input.
public enum ProtoWireError: Error, Equatable, Sendable, CustomStringConvertible {
  /// Messages nest deeper than the limit; the payload is the depth reached
  /// (the first depth over the limit: the scan stops there).
  case tooDeep(Int)
  /// The bytes are not well-formed protobuf wire format; `offset` is the byte
  /// offset into the buffer where the problem was found.
  case malformed(reason: String, offset: Int)

  public var description: String {
    switch self {
    case .tooDeep(let depth): "message nesting depth \(depth) exceeds the limit"
    case .malformed(let reason, let offset): "\(reason) at byte \(offset)"
    }
  }
}

public enum ProtoWire {
  /// Nesting limit used by the ONNX importer, in message levels (the ModelProto
  /// itself is level 1). Protobuf's own C++ and Python parsers stop at 100 nested
  /// levels by default, so a model they can load passes this (give or take the
  /// top level). A subgraph costs 3 levels (GraphProto > NodeProto > AttributeProto),
  /// so this admits about 30 levels of nested If/Loop/Scan bodies.
  public static let defaultDepthLimit = 100

  /// Walks `bytes` as a serialized `onnx.ModelProto` and returns the deepest
  /// message nesting found: 1 for a ModelProto with no sub-messages (or for an
  /// empty buffer), 2 when it holds a graph, and so on.
  ///
  /// Only length-delimited fields that onnx.proto declares as messages are
  /// descended into; strings, bytes, packed scalars and unknown fields are skipped
  /// (but their lengths must stay within the enclosing message). Runs in time
  /// linear in `bytes.count`, uses memory proportional to the depth limit, and
  /// never traps.
  ///
  /// - Throws: `.tooDeep(depth)` as soon as the depth exceeds `limit`;
  ///   `.malformed(reason:offset:)` for a varint longer than 10 bytes, a varint,
  ///   fixed field or length running past the end of its enclosing message,
  ///   field number 0 or above 2^29-1, and wire types 3, 4 (groups), 6 and 7.
  public static func maxMessageDepth(
    _ bytes: UnsafeRawBufferPointer, limit: Int
  ) throws(ProtoWireError) -> Int {
    try maxMessageDepth(bytes, root: .model, limit: limit)
  }

  static func maxMessageDepth(
    _ bytes: UnsafeRawBufferPointer, root: ONNXMessage, limit: Int
  ) throws(ProtoWireError) -> Int {
    if limit < 1 { throw .tooDeep(1) }
    let count = bytes.count
    // Open messages, innermost last: where each one ends, and its type.
    var ends: [Int] = [count]
    var kinds: [ONNXMessage] = [root]
    ends.reserveCapacity(min(limit, 128) + 1)
    kinds.reserveCapacity(min(limit, 128) + 1)
    var deepest = 1
    var pos = 0

    while true {
      // Close every message that ends here.
      while let end = ends.last, pos == end {
        ends.removeLast()
        kinds.removeLast()
      }
      guard let end = ends.last, let kind = kinds.last else { break }
      // Invariant: 0 <= pos < end <= count.

      let tagOffset = pos
      let tag = try readVarint(bytes, &pos, end: end)
      let field = tag >> 3
      if field == 0 || field > 0x1FFF_FFFF {
        throw .malformed(reason: "invalid field number \(field)", offset: tagOffset)
      }
      switch tag & 7 {
      case 0:  // varint
        _ = try readVarint(bytes, &pos, end: end)
      case 1:  // fixed64
        guard end - pos >= 8 else {
          throw .malformed(reason: "fixed64 field runs past the end of its message", offset: pos)
        }
        pos &+= 8
      case 5:  // fixed32
        guard end - pos >= 4 else {
          throw .malformed(reason: "fixed32 field runs past the end of its message", offset: pos)
        }
        pos &+= 4
      case 2:  // length-delimited
        let lengthOffset = pos
        let length = try readVarint(bytes, &pos, end: end)
        // end - pos >= 0 here, so the comparison is in range and the sum cannot overflow.
        guard length <= UInt64(end - pos) else {
          throw .malformed(
            reason: "length \(length) runs past the end of its message", offset: lengthOffset)
        }
        let stop = pos &+ Int(length)
        if let child = kind.child(Int(field)) {
          let depth = ends.count &+ 1
          if depth > limit { throw .tooDeep(depth) }
          if depth > deepest { deepest = depth }
          ends.append(stop)
          kinds.append(child)
        } else {
          pos = stop
        }
      case let wireType:
        let reason =
          wireType == 3 || wireType == 4
          ? "group wire type \(wireType) (unsupported)" : "invalid wire type \(wireType)"
        throw .malformed(reason: reason, offset: tagOffset)
      }
    }
    return deepest
  }

  /// Reads a base-128 varint at `pos`, which must end before `end`; at most 10 bytes.
  @inline(__always)
  static func readVarint(
    _ bytes: UnsafeRawBufferPointer, _ pos: inout Int, end: Int
  ) throws(ProtoWireError) -> UInt64 {
    let start = pos
    var value: UInt64 = 0
    var shift: UInt64 = 0
    var i = pos
    while true {
      guard i < end else {
        throw .malformed(reason: "truncated varint", offset: start)
      }
      let byte = bytes[i]
      i &+= 1
      value |= UInt64(byte & 0x7F) &<< shift
      if byte & 0x80 == 0 { break }
      shift &+= 7
      if shift >= 70 {
        throw .malformed(reason: "varint longer than 10 bytes", offset: start)
      }
    }
    pos = i
    return value
  }
}

/// The onnx.proto message types, with the fields of each that hold messages.
/// This must list every message-typed field of the onnx.proto that generated
/// Sources/ONNXProto (onnx 1.23.2, see scripts/regen-onnx-proto.sh): protobuf-c
/// recurses into exactly those, and keeps unknown fields as unparsed bytes.
/// ProtoWireTests checks this table against the protobuf-c descriptors.
enum ONNXMessage: UInt8, CaseIterable, Sendable {
  case model, graph, node, attribute, tensor, sparseTensor, valueInfo, trainingInfo
  case function, tensorAnnotation, tensorShape, tensorShapeDimension, segment
  case type, typeTensor, typeSequence, typeMap, typeOptional, typeSparseTensor, typeOpaque
  case stringStringEntry, operatorSetId, deviceConfiguration
  case nodeDeviceConfiguration, shardingSpec, shardedDim, simpleShardedDim, intIntListEntry

  /// The full protobuf name, as in the protobuf-c descriptors.
  var protoName: String {
    switch self {
    case .model: "onnx.ModelProto"
    case .graph: "onnx.GraphProto"
    case .node: "onnx.NodeProto"
    case .attribute: "onnx.AttributeProto"
    case .tensor: "onnx.TensorProto"
    case .sparseTensor: "onnx.SparseTensorProto"
    case .valueInfo: "onnx.ValueInfoProto"
    case .trainingInfo: "onnx.TrainingInfoProto"
    case .function: "onnx.FunctionProto"
    case .tensorAnnotation: "onnx.TensorAnnotation"
    case .tensorShape: "onnx.TensorShapeProto"
    case .tensorShapeDimension: "onnx.TensorShapeProto.Dimension"
    case .segment: "onnx.TensorProto.Segment"
    case .type: "onnx.TypeProto"
    case .typeTensor: "onnx.TypeProto.Tensor"
    case .typeSequence: "onnx.TypeProto.Sequence"
    case .typeMap: "onnx.TypeProto.Map"
    case .typeOptional: "onnx.TypeProto.Optional"
    case .typeSparseTensor: "onnx.TypeProto.SparseTensor"
    case .typeOpaque: "onnx.TypeProto.Opaque"
    case .stringStringEntry: "onnx.StringStringEntryProto"
    case .operatorSetId: "onnx.OperatorSetIdProto"
    case .deviceConfiguration: "onnx.DeviceConfigurationProto"
    case .nodeDeviceConfiguration: "onnx.NodeDeviceConfigurationProto"
    case .shardingSpec: "onnx.ShardingSpecProto"
    case .shardedDim: "onnx.ShardedDimProto"
    case .simpleShardedDim: "onnx.SimpleShardedDimProto"
    case .intIntListEntry: "onnx.IntIntListEntryProto"
    }
  }

  /// The message type of field `field` of this message, or nil when that field
  /// is not a message (or not known).
  func child(_ field: Int) -> ONNXMessage? {
    switch self {
    case .model:
      switch field {
      case 7: .graph
      case 8: .operatorSetId
      case 14: .stringStringEntry
      case 20: .trainingInfo
      case 25: .function
      case 26: .deviceConfiguration
      default: nil
      }
    case .graph:
      switch field {
      case 1: .node
      case 5: .tensor
      case 15: .sparseTensor
      case 11, 12, 13: .valueInfo
      case 14: .tensorAnnotation
      case 16: .stringStringEntry
      default: nil
      }
    case .node:
      switch field {
      case 5: .attribute
      case 9: .stringStringEntry
      case 10: .nodeDeviceConfiguration
      default: nil
      }
    case .attribute:
      switch field {
      case 5, 10: .tensor
      case 6, 11: .graph
      case 22, 23: .sparseTensor
      case 14, 15: .type
      default: nil
      }
    case .tensor:
      switch field {
      case 3: .segment
      case 13, 16: .stringStringEntry
      default: nil
      }
    case .sparseTensor:
      switch field {
      case 1, 2: .tensor
      default: nil
      }
    case .valueInfo:
      switch field {
      case 2: .type
      case 4: .stringStringEntry
      default: nil
      }
    case .trainingInfo:
      switch field {
      case 1, 2: .graph
      case 3, 4: .stringStringEntry
      default: nil
      }
    case .function:
      switch field {
      case 7: .node
      case 9: .operatorSetId
      case 11: .attribute
      case 12: .valueInfo
      case 14: .stringStringEntry
      default: nil
      }
    case .tensorAnnotation:
      field == 2 ? .stringStringEntry : nil
    case .tensorShape:
      field == 1 ? .tensorShapeDimension : nil
    case .type:
      switch field {
      case 1: .typeTensor
      case 4: .typeSequence
      case 5: .typeMap
      case 7: .typeOpaque
      case 8: .typeSparseTensor
      case 9: .typeOptional
      default: nil
      }
    case .typeTensor, .typeSparseTensor:
      field == 2 ? .tensorShape : nil
    case .typeSequence, .typeOptional:
      field == 1 ? .type : nil
    case .typeMap:
      field == 2 ? .type : nil
    case .nodeDeviceConfiguration:
      field == 2 ? .shardingSpec : nil
    case .shardingSpec:
      switch field {
      case 3: .intIntListEntry
      case 4: .shardedDim
      default: nil
      }
    case .shardedDim:
      field == 2 ? .simpleShardedDim : nil
    case .tensorShapeDimension, .segment, .typeOpaque, .stringStringEntry, .operatorSetId,
      .deviceConfiguration, .simpleShardedDim, .intIntListEntry:
      nil
    }
  }
}
