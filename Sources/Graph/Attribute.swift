/// A node attribute: ONNX's `AttributeProto`.
public struct Attribute: Sendable {
  public indirect enum Value: Sendable {
    case float(Float)
    case int(Int64)
    case string([UInt8])
    case tensor(Tensor)
    case graph(Graph)
    case sparseTensor(OpaqueProto)
    case type(ValueType)
    case floats([Float])
    case ints([Int64])
    case strings([[UInt8]])
    case tensors([Tensor])
    case graphs([Graph])
    case sparseTensors([OpaqueProto])
    case types([ValueType])
    /// Only a reference to an attribute of the enclosing function (`ref_attr_name`); the type
    /// code is ONNX's `AttributeType`.
    case reference(type: Int32)
  }

  public var name: String
  public var value: Value
  /// In a function body: the name of the enclosing function's attribute this one takes its value from.
  public var refAttrName: String?
  public var docString: String

  public init(_ name: String, _ value: Value, refAttrName: String? = nil, docString: String = "") {
    self.name = name
    self.value = value
    self.refAttrName = refAttrName
    self.docString = docString
  }

  public var int: Int64? {
    if case .int(let v) = value { return v }
    return nil
  }
  public var float: Float? {
    if case .float(let v) = value { return v }
    return nil
  }
  public var ints: [Int64]? {
    if case .ints(let v) = value { return v }
    return nil
  }
  public var floats: [Float]? {
    if case .floats(let v) = value { return v }
    return nil
  }
  /// A string attribute decoded as UTF-8.
  public var string: String? {
    if case .string(let v) = value { return String(decoding: v, as: UTF8.self) }
    return nil
  }
  public var tensor: Tensor? {
    if case .tensor(let v) = value { return v }
    return nil
  }

  /// The subgraphs this attribute holds.
  public var subgraphs: [Graph] {
    switch value {
    case .graph(let g): return [g]
    case .graphs(let gs): return gs
    default: return []
    }
  }
}

extension Attribute.Value {
  /// The same value with each subgraph replaced by `transform` of it.
  public func mappingSubgraphs(_ transform: (Graph) throws -> Graph) rethrows -> Attribute.Value {
    switch self {
    case .graph(let g): return .graph(try transform(g))
    case .graphs(let gs): return .graphs(try gs.map(transform))
    default: return self
    }
  }
}
