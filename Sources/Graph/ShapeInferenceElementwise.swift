/// Shape inference for elementwise operators (unary, broadcasting binary and variadic), type
/// conversions and normalizations.
extension ShapeInference {
  /// Operators whose output has the type and shape of their first input.
  static let sameTypeOps = [
    OpType.abs, OpType.acos, OpType.asin, OpType.atan, OpType.ceil, OpType.celu, OpType.clip, OpType.cos,
    OpType.elu, OpType.erf, OpType.exp, OpType.floor, OpType.gelu, OpType.hardSigmoid, OpType.hardSwish,
    OpType.leakyRelu, OpType.log, OpType.mish, OpType.neg, OpType.not, OpType.reciprocal, OpType.relu,
    OpType.round, OpType.selu, OpType.shrink, OpType.sigmoid, OpType.sign, OpType.sin, OpType.softplus,
    OpType.softsign, OpType.sqrt, OpType.tan, OpType.tanh, OpType.thresholdedRelu, OpType.cumSum,
    OpType.trilu, OpType.scatterElements, OpType.scatterND,
  ]

  /// Broadcasting operators whose output has the element type of their first input.
  static let arithmeticOps = [
    OpType.add, OpType.sub, OpType.mul, OpType.div, OpType.pow, OpType.mod, OpType.pRelu, OpType.bitShift,
    OpType.min, OpType.max, OpType.sum, OpType.mean,
  ]

  /// Broadcasting operators whose output is bool.
  static let comparisonOps = [
    OpType.equal, OpType.less, OpType.greater, OpType.lessOrEqual, OpType.greaterOrEqual, OpType.and,
    OpType.or, OpType.xor,
  ]

  static let elementwiseRules: [String: Rule] = {
    var rules: [String: Rule] = [:]
    for op in sameTypeOps { rules[op] = { $0.same($1) } }
    for op in arithmeticOps { rules[op] = { $0.broadcasting($1, dtype: $0.dtype($1.input(0))) } }
    for op in comparisonOps { rules[op] = { $0.broadcasting($1, dtype: .bool) } }
    rules[OpType.isInf] = { [$0.tensor(.bool, $0.shape($1.input(0)))] }
    rules[OpType.isNaN] = { [$0.tensor(.bool, $0.shape($1.input(0)))] }
    rules[OpType.identity] = { [$0.type($1.input(0))] }
    rules[OpType.where] = { $0.broadcasting($1, dtype: $0.dtype($1.input(1)) ?? $0.dtype($1.input(2))) }
    rules[OpType.cast] = { $0.cast($1) }
    rules[OpType.castLike] = { [$0.tensor($0.dtype($1.input(1)), $0.shape($1.input(0)))] }
    rules[OpType.quantizeLinear] = { $0.quantizeLinear($1) }
    rules[OpType.dequantizeLinear] = { $0.dequantizeLinear($1) }
    return rules
  }()

  static let normalizationRules: [String: Rule] = [
    OpType.softmax: { $0.same($1) },
    OpType.logSoftmax: { $0.same($1) },
    OpType.hardmax: { $0.same($1) },
    OpType.lrn: { $0.same($1) },
    OpType.instanceNormalization: { $0.same($1) },
    OpType.meanVarianceNormalization: { $0.same($1) },
    OpType.batchNormalization: { $0.same($1) + [$0.type($1.input(3)), $0.type($1.input(4))] },
    OpType.layerNormalization: { $0.layerNormalization($1) },
    OpType.dropout: { $0.same($1) + [$0.tensor(.bool, $0.shape($1.input(0)))] },
  ]

  /// Multidirectional broadcasting over every present input.
  mutating func broadcasting(_ node: Node, dtype: DType?) -> [ValueType?] {
    let inputs = node.inputs.compactMap { $0 }
    let shapes = inputs.compactMap { shape($0) }
    guard !inputs.isEmpty, shapes.count == inputs.count else { return [tensor(dtype, nil)] }
    return [tensor(dtype, broadcast(shapes))]
  }

  mutating func cast(_ node: Node) -> [ValueType?] {
    guard let code = node.attribute("to")?.int, let raw = Int32(exactly: code), DType(rawValue: raw).isKnown, raw != 0 else {
      report("attribute 'to' is missing or not an element type")
      return []
    }
    return [tensor(DType(rawValue: raw), shape(node.input(0)))]
  }

  mutating func quantizeLinear(_ node: Node) -> [ValueType?] {
    var dtype = dtype(node.input(2)) ?? .uint8
    if let code = int(node, "output_dtype"), code != 0, let raw = Int32(exactly: code) { dtype = DType(rawValue: raw) }
    return [tensor(dtype, shape(node.input(0)))]
  }

  mutating func dequantizeLinear(_ node: Node) -> [ValueType?] {
    var dtype = dtype(node.input(1)) ?? .float
    if let code = int(node, "output_dtype"), code != 0, let raw = Int32(exactly: code) { dtype = DType(rawValue: raw) }
    return [tensor(dtype, shape(node.input(0)))]
  }

  /// Y like X; Mean and InvStdDev keep the dims before `axis` and have 1s from it on.
  mutating func layerNormalization(_ node: Node) -> [ValueType?] {
    let x = shape(node.input(0))
    let stash = int(node, "stash_type").flatMap { Int32(exactly: $0) }.map(DType.init(rawValue:)) ?? .float
    guard let x else { return same(node) + [tensor(stash, nil), tensor(stash, nil)] }
    guard let axis = normalize(axis: int(node, "axis") ?? -1, rank: x.count) else { return same(node) }
    let statistics = Array(x[..<axis]) + Array(repeating: .value(1), count: x.count - axis)
    return same(node) + [tensor(stash, statistics), tensor(stash, statistics)]
  }
}
