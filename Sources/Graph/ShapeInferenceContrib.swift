/// Shape inference for the `com.microsoft` operators rebirth writes (``OpType/Contrib``).
extension ShapeInference {
  static let contribRules: [String: Rule] = [
    OpType.Contrib.attention: { $0.contribAttention($1) },
    OpType.Contrib.gelu: { $0.same($1) },
  ]

  /// input [B,S,Nin], weights [Nin, N + N + Nv] (Nv = qkv_hidden_sizes[2], else a third): [B,S,Nv].
  /// The `present` output (with a past state) is left unknown.
  mutating func contribAttention(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    guard let x = shape(node.input(0)) else { return [tensor(dtype, nil)] }
    guard x.count == 3 else {
      report("input has rank \(x.count); Attention needs 3")
      return [tensor(dtype, nil)]
    }
    var hidden = Dim.unknown
    if let sizes = ints(node, "qkv_hidden_sizes") {
      if sizes.count == 3 { hidden = .value(sizes[2]) } else { report("qkv_hidden_sizes has \(sizes.count) values, not 3") }
    } else if let w = shape(node.input(1)), w.count == 2 {
      hidden = DimArithmetic.divide(w[1], by: 3)
    }
    return [tensor(dtype, [x[0], x[1], hidden])]
  }
}
