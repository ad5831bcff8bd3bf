/// One dimension of a tensor shape.
public enum Dim: Hashable, Sendable, CustomStringConvertible {
  /// A known extent.
  case value(Int)
  /// A named, symbolic extent (`dim_param`), such as a batch size `N`.
  case param(String)
  /// Neither known nor named.
  case unknown

  public var description: String {
    switch self {
    case .value(let v): return String(v)
    case .param(let p): return p
    case .unknown: return "?"
    }
  }

  public var value: Int? {
    if case .value(let v) = self { return v }
    return nil
  }
}

/// The type of a value: ONNX's `TypeProto`.
public indirect enum ValueType: Hashable, Sendable {
  /// A dense tensor; `shape` nil means the rank is unknown.
  case tensor(DType, shape: [Dim]?)
  case sparseTensor(DType, shape: [Dim]?)
  case sequence(ValueType?)
  case optional(ValueType?)
  case map(key: DType, value: ValueType?)
  case opaque(domain: String, name: String)

  /// The element type of a dense tensor type.
  public var tensorElementType: DType? {
    if case .tensor(let dtype, _) = self { return dtype }
    return nil
  }

  /// The shape of a dense tensor type, when ranked.
  public var tensorShape: [Dim]? {
    if case .tensor(_, let shape) = self { return shape }
    return nil
  }

  /// The shape as plain integers, when every dimension is known.
  public var staticShape: [Int]? {
    guard let shape = tensorShape else { return nil }
    var dims: [Int] = []
    dims.reserveCapacity(shape.count)
    for dim in shape {
      guard case .value(let v) = dim else { return nil }
      dims.append(v)
    }
    return dims
  }
}

/// A key and value pair, as `StringStringEntryProto` carries them.
public struct MetadataEntry: Hashable, Sendable {
  public var key: String
  public var value: String
  public init(key: String, value: String) {
    self.key = key
    self.value = value
  }
}

/// A protobuf message kept as its encoded bytes, for parts of ONNX that rebirth carries through
/// without interpreting (training info, sparse tensors in attributes).
public struct OpaqueProto: Hashable, Sendable {
  public var bytes: [UInt8]
  public init(bytes: [UInt8]) { self.bytes = bytes }
}
