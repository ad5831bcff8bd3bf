/// Reading types, attributes and constants for shape inference rules, and arithmetic on dims.
extension ShapeInference {
  /// Extents above this are treated as unknown, so that the arithmetic of the rules (with
  /// attributes bounded by `maxAttribute`) cannot overflow.
  static let maxDim = 1 << 40
  /// Kernel sizes, strides, dilations and pads above this are rejected.
  static let maxAttribute = 1 << 20

  // MARK: Types

  func type(_ v: ValueID?) -> ValueType? {
    guard let v else { return nil }
    return graph[v].type
  }

  /// The element type, when known.
  func dtype(_ v: ValueID?) -> DType? {
    guard let d = type(v)?.tensorElementType, d != .undefined else { return nil }
    return d
  }

  /// The shape, when the rank is known; extents that are negative or implausibly large read as unknown.
  func shape(_ v: ValueID?) -> [Dim]? {
    type(v)?.tensorShape?.map { dim in
      if case .value(let k) = dim, k < 0 || k > Self.maxDim { return .unknown }
      return dim
    }
  }

  /// A tensor type, or nil when neither element type nor shape is known.
  func tensor(_ dtype: DType?, _ shape: [Dim]?) -> ValueType? {
    if dtype == nil && shape == nil { return nil }
    return .tensor(dtype ?? .undefined, shape: shape)
  }

  /// The type of input `i`, for operators whose output looks like an input.
  func same(_ node: Node, _ i: Int = 0) -> [ValueType?] {
    [tensor(dtype(node.input(i)), shape(node.input(i)))]
  }

  // MARK: Attributes

  func int(_ node: Node, _ name: String) -> Int? {
    node.attribute(name)?.int.flatMap { Int(exactly: $0) }
  }

  func ints(_ node: Node, _ name: String) -> [Int]? {
    guard let values = node.attribute(name)?.ints else { return nil }
    let result = values.compactMap { Int(exactly: $0) }
    return result.count == values.count ? result : nil
  }

  func string(_ node: Node, _ name: String) -> String? { node.attribute(name)?.string }

  /// Integer attribute `name`, `count` entries each in `range`, or `count` copies of `fallback`
  /// when absent; nil (reported) when malformed.
  mutating func boundedInts(_ node: Node, _ name: String, count: Int, in range: ClosedRange<Int>, fallback: Int) -> [Int]? {
    guard node.attribute(name) != nil else { return Array(repeating: fallback, count: count) }
    guard let values = ints(node, name), values.count == count, values.allSatisfy(range.contains) else {
      report("attribute '\(name)' must hold \(count) values in \(range.lowerBound)...\(range.upperBound)")
      return nil
    }
    return values
  }

  /// `axis` normalized into 0..<rank (negative axes count from the end); reports when out of range.
  mutating func normalize(axis: Int, rank: Int) -> Int? {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0 && a < rank else {
      report("axis \(axis) is out of range for rank \(rank)")
      return nil
    }
    return a
  }

  /// Several axes normalized; nil (reported) when one is out of range or repeated.
  mutating func normalize(axes: [Int], rank: Int) -> [Int]? {
    var result: [Int] = []
    for axis in axes {
      guard let a = normalize(axis: axis, rank: rank) else { return nil }
      guard !result.contains(a) else {
        report("axis \(axis) is repeated")
        return nil
      }
      result.append(a)
    }
    return result
  }

  // MARK: Constants

  /// The tensor behind `v` when it is a constant: an initializer no caller can override, or the
  /// output of a Constant node.
  func constantTensor(_ v: ValueID?) -> Tensor? {
    guard let v else { return nil }
    if let t = graph.constant(v) { return t }
    guard let p = graph.producer(of: v), p.opType == OpType.constant, OpType.isDefaultDomain(p.domain) else { return nil }
    return Self.constantValue(of: p)
  }

  /// The tensor a Constant node produces, from whichever `value*` attribute it has.
  static func constantValue(of node: Node) -> Tensor? {
    for attribute in node.attributes {
      switch (attribute.name, attribute.value) {
      case ("value", .tensor(let t)): return t
      case ("value_float", .float(let f)): return Tensor(floats: [f], shape: [])
      case ("value_floats", .floats(let fs)): return Tensor(floats: fs, shape: [fs.count])
      case ("value_int", .int(let i)): return Tensor(int64s: [i], shape: [])
      case ("value_ints", .ints(let xs)): return Tensor(int64s: xs, shape: [xs.count])
      case ("value_string", .string(let s)): return Tensor(strings: [s], shape: [])
      case ("value_strings", .strings(let ss)): return Tensor(strings: ss, shape: [ss.count])
      default: continue
      }
    }
    return nil
  }

  /// The elements of a rank-0 or rank-1 integer value when known, each as a Dim: constant data
  /// as `.value`, shapes computed in the graph as whatever their dims are.
  func elements(_ v: ValueID?) -> [Dim]? {
    guard let v else { return nil }
    if let known = data[v] { return known }
    guard let t = constantTensor(v), t.shape.count <= 1, t.elementCount <= 4096, let xs = t.int64s else { return nil }
    return xs.map { Int(exactly: $0).map(Dim.value) ?? .unknown }
  }

  /// The elements of a rank-0 or rank-1 integer value when every one is known.
  func ints(_ v: ValueID?) -> [Int]? {
    guard let dims = elements(v) else { return nil }
    let values = dims.compactMap(\.value)
    return values.count == dims.count ? values : nil
  }

  /// The elements of a float32, float64 or integer constant.
  func doubles(_ v: ValueID?) -> [Double]? {
    guard let t = constantTensor(v), t.elementCount <= 4096 else { return nil }
    let bytes = t.rawBytes
    switch t.dtype {
    case .float:
      return (0..<bytes.count / 4).map {
        Double(Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))))
      }
    case .double:
      return (0..<bytes.count / 8).map {
        Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)))
      }
    default: return t.int64s?.map(Double.init)
    }
  }

  /// Whether input `i` of `node` is present.
  func has(_ node: Node, _ i: Int) -> Bool { node.input(i) != nil }
}

/// Arithmetic on dims: known extents combine exactly, a symbolic extent survives where the
/// arithmetic leaves it alone (times 1, plus 0), and anything else becomes unknown.
enum DimArithmetic {
  /// The product of `dims`: known when all are, symbolic when one symbol is multiplied by 1s.
  static func product<S: Sequence>(_ dims: S) -> Dim where S.Element == Dim {
    var known = 1
    var symbol: Dim?
    for dim in dims {
      switch dim {
      case .value(let k):
        let (p, overflow) = known.multipliedReportingOverflow(by: k)
        if overflow { return .unknown }
        known = p
      case .param:
        if symbol != nil { return .unknown }
        symbol = dim
      case .unknown: return .unknown
      }
    }
    if known == 0 { return .value(0) }
    guard let symbol else { return .value(known) }
    return known == 1 ? symbol : .unknown
  }

  /// `dim + offset`.
  static func add(_ dim: Dim, _ offset: Int) -> Dim {
    switch dim {
    case .value(let k): return .value(k + offset)
    default: return offset == 0 ? dim : .unknown
    }
  }

  /// The sum of `dims`, known only when all are (or all but zeros are one symbol).
  static func sum(_ dims: [Dim]) -> Dim {
    var total = 0
    var symbol: Dim?
    for dim in dims {
      switch dim {
      case .value(let k): total += k
      case .param:
        if symbol != nil { return .unknown }
        symbol = dim
      case .unknown: return .unknown
      }
    }
    guard let symbol else { return .value(total) }
    return total == 0 ? symbol : .unknown
  }

  /// The extent two dims broadcast to, or nil when they cannot (two different known extents, neither 1).
  static func broadcast(_ a: Dim, _ b: Dim) -> Dim? {
    switch (a, b) {
    case (.value(let x), .value(let y)):
      if x == y || y == 1 { return a }
      return x == 1 ? b : nil
    case (.value(1), _): return b
    case (_, .value(1)): return a
    case (.value, _): return a
    case (_, .value): return b
    case (.param(let p), .param(let q)): return p == q ? a : .unknown
    default: return .unknown
    }
  }

  /// The more specific of two dims that must be equal, or nil when they are different known extents.
  static func unify(_ a: Dim, _ b: Dim) -> Dim? {
    switch (a, b) {
    case (.value(let x), .value(let y)): return x == y ? a : nil
    case (.value, _): return a
    case (_, .value): return b
    case (.param, _): return a
    default: return b
    }
  }

  /// Division of a dim by a known divisor, when it is exact.
  static func divide(_ dim: Dim, by divisor: Int) -> Dim {
    guard divisor > 0 else { return .unknown }
    if divisor == 1 { return dim }
    guard case .value(let k) = dim, k % divisor == 0 else { return .unknown }
    return .value(k / divisor)
  }

  /// A dim times a known factor.
  static func multiply(_ dim: Dim, by factor: Int) -> Dim { product([dim, .value(factor)]) }
}

extension ShapeInference {
  /// The multidirectional (numpy) broadcast of several shapes; reports when they cannot broadcast.
  mutating func broadcast(_ shapes: [[Dim]]) -> [Dim]? {
    let rank = shapes.map(\.count).max() ?? 0
    var result = [Dim](repeating: .value(1), count: rank)
    for shape in shapes {
      let offset = rank - shape.count
      for (i, dim) in shape.enumerated() {
        guard let b = DimArithmetic.broadcast(result[offset + i], dim) else {
          let rendered = shapes.map { "[" + $0.map(\.description).joined(separator: ",") + "]" }
          report("shapes \(rendered.joined(separator: " and ")) do not broadcast")
          return nil
        }
        result[offset + i] = b
      }
    }
    return result
  }
}
