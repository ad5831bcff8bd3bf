/// Shape inference for matrix products, recurrent layers and If.
extension ShapeInference {
  static let matrixRules: [String: Rule] = [
    OpType.gemm: { $0.gemm($1) },
    OpType.matMul: { $0.matMul($1, dtype: $0.dtype($1.input(0))) },
    OpType.matMulInteger: { $0.matMul($1, dtype: .int32) },
  ]

  static let recurrentRules: [String: Rule] = [
    OpType.lstm: { $0.recurrent($1, gates: 4, outputs: 3) },
    OpType.gru: { $0.recurrent($1, gates: 3, outputs: 2) },
    OpType.rnn: { $0.recurrent($1, gates: 1, outputs: 2) },
    OpType.if: { $0.ifNode($1) },
  ]

  /// `Y = α·A′·B′ + β·C` with `A′ = transA ? Aᵀ : A` ([M,K]) and `B′ = transB ? Bᵀ : B` ([K,N]): [M,N].
  mutating func gemm(_ node: Node) -> [ValueType?] {
    let dtype = dtype(node.input(0)) ?? dtype(node.input(1))
    let a = shape(node.input(0)), b = shape(node.input(1))
    if let a, a.count != 2 { report("A has rank \(a.count); Gemm needs 2") }
    if let b, b.count != 2 { report("B has rank \(b.count); Gemm needs 2") }
    let transA = (int(node, "transA") ?? 0) != 0, transB = (int(node, "transB") ?? 0) != 0
    let a2 = a?.count == 2 ? a : nil, b2 = b?.count == 2 ? b : nil
    let m = a2.map { transA ? $0[1] : $0[0] } ?? .unknown
    let n = b2.map { transB ? $0[0] : $0[1] } ?? .unknown
    if let ka = a2.map({ transA ? $0[0] : $0[1] }), let kb = b2.map({ transB ? $0[1] : $0[0] }),
      DimArithmetic.unify(ka, kb) == nil
    {
      report("inner dimensions \(ka) and \(kb) differ")
    }
    return [tensor(dtype, [m, n])]
  }

  /// numpy matmul: 1-D operands are promoted (a leading or trailing 1 that the result drops) and
  /// the batch dimensions broadcast.
  mutating func matMul(_ node: Node, dtype: DType?) -> [ValueType?] {
    guard let a = shape(node.input(0)), let b = shape(node.input(1)) else { return [tensor(dtype, nil)] }
    guard !a.isEmpty, !b.isEmpty else {
      report("MatMul operands must have rank at least 1")
      return [tensor(dtype, nil)]
    }
    let a2 = a.count == 1 ? [.value(1)] + a : a
    let b2 = b.count == 1 ? b + [.value(1)] : b
    if DimArithmetic.unify(a2[a2.count - 1], b2[b2.count - 2]) == nil {
      report("inner dimensions \(a2[a2.count - 1]) and \(b2[b2.count - 2]) differ")
    }
    guard var out = broadcast([Array(a2.dropLast(2)), Array(b2.dropLast(2))]) else { return [tensor(dtype, nil)] }
    if a.count > 1 { out.append(a2[a2.count - 2]) }
    if b.count > 1 { out.append(b2[b2.count - 1]) }
    return [tensor(dtype, out)]
  }

  /// LSTM, GRU, RNN. With X [seq, batch, input] (layout 0) or [batch, seq, input] (layout 1):
  /// Y is [seq, dirs, batch, hidden] or [batch, seq, dirs, hidden]; Y_h (and Y_c) are
  /// [dirs, batch, hidden] or [batch, dirs, hidden].
  mutating func recurrent(_ node: Node, gates: Int, outputs: Int) -> [ValueType?] {
    let dtype = dtype(node.input(0))
    let direction = string(node, "direction") ?? "forward"
    guard ["forward", "reverse", "bidirectional"].contains(direction) else {
      report("direction '\(direction)' is not forward, reverse or bidirectional")
      return []
    }
    let dirs = Dim.value(direction == "bidirectional" ? 2 : 1)
    let layout = int(node, "layout") ?? 0
    let x = shape(node.input(0)).flatMap { $0.count == 3 ? $0 : nil } ?? [.unknown, .unknown, .unknown]
    let (seq, batch) = layout == 0 ? (x[0], x[1]) : (x[1], x[0])
    let hidden = hiddenSize(node, gates: gates)
    let y: [Dim] = layout == 0 ? [seq, dirs, batch, hidden] : [batch, seq, dirs, hidden]
    let state: [Dim] = layout == 0 ? [dirs, batch, hidden] : [batch, dirs, hidden]
    return [tensor(dtype, y)] + Array(repeating: tensor(dtype, state), count: outputs - 1)
  }

  /// `hidden_size`, or what the recurrence weight R [dirs, gates·hidden, hidden] or W implies.
  func hiddenSize(_ node: Node, gates: Int) -> Dim {
    if let h = int(node, "hidden_size"), h > 0 { return .value(h) }
    if let r = shape(node.input(2)), r.count == 3, r[2].value != nil { return r[2] }
    if let w = shape(node.input(1)), w.count == 3 { return DimArithmetic.divide(w[1], by: gates) }
    return .unknown
  }

  /// Each output has what both branches agree on.
  mutating func ifNode(_ node: Node) -> [ValueType?] {
    guard let thenBranch = node.attribute("then_branch")?.subgraphs.first,
      let elseBranch = node.attribute("else_branch")?.subgraphs.first
    else {
      report("then_branch or else_branch is missing")
      return []
    }
    guard thenBranch.outputs.count == elseBranch.outputs.count, thenBranch.outputs.count == node.outputs.count else {
      report("the branches have \(thenBranch.outputs.count) and \(elseBranch.outputs.count) outputs for \(node.outputs.count)")
      return []
    }
    return zip(thenBranch.outputs, elseBranch.outputs).map { Self.union(thenBranch[$0].type, elseBranch[$1].type) }
  }

  /// What two types have in common: dims where they agree, the rank where it agrees.
  static func union(_ a: ValueType?, _ b: ValueType?) -> ValueType? {
    guard let a, let b else { return nil }
    if a == b { return a }
    guard case .tensor(let d1, let s1) = a, case .tensor(let d2, let s2) = b, d1 == d2 else { return nil }
    guard let s1, let s2, s1.count == s2.count else { return .tensor(d1, shape: nil) }
    return .tensor(d1, shape: zip(s1, s2).map { $0 == $1 ? $0 : .unknown })
  }
}
