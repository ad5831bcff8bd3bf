import Testing

@testable import Graph

/// x -> Conv(w) -> c -> Relu -> y, with y the graph output.
private func convRelu() throws -> (Graph, conv: NodeID, relu: NodeID) {
  var g = Graph(name: "g")
  let x = try g.addInput(name: "x", type: .tensor(.float, shape: [.param("N"), .value(2), .value(4), .value(4)]))
  let w = try g.addInitializer(name: "w", Tensor(floats: Array(repeating: 0.5, count: 2 * 2 * 9), shape: [2, 2, 3, 3]))
  let conv = try g.addNode(opType: "Conv", name: "conv", inputs: [x, w], outputs: ["c"])
  let relu = try g.addNode(opType: "Relu", name: "relu", inputs: [g[conv].outputs[0]], outputs: ["y"])
  g.addOutput(g[relu].outputs[0]!)
  return (g, conv, relu)
}

@Test func useListsFollowEdits() throws {
  var (g, conv, relu) = try convRelu()
  try g.verify()
  let c = g[conv].outputs[0]!
  #expect(g.uses(of: c) == [.input(relu, 0)])
  let y = g[relu].outputs[0]!
  #expect(g.uses(of: y) == [.graphOutput(0)])
  #expect(g.isGraphOutput(y))
  #expect(g.constant(g.value(named: "w")) != nil)
  #expect(g.constant(g.value(named: "x")) == nil)
  #expect(g.producer(of: c)?.id == conv)

  // Bypass the Relu: the graph output keeps its name "y".
  g.replaceAllUses(of: y, with: c)
  g.removeNode(relu)
  try g.verify()
  #expect(g[g.outputs[0]].name == "y")
  #expect(g.outputs[0] == c)
  #expect(g[conv].outputs[0] == c)
  #expect(g.nodeCount == 1)
}

@Test func replacingAGraphOutputWithAnInputInsertsIdentity() throws {
  var (g, conv, relu) = try convRelu()
  let x = g.value(named: "x")!
  let y = g[relu].outputs[0]!
  g.replaceAllUses(of: y, with: x)
  g.removeNode(relu)
  g.removeNode(conv)
  try g.verify()
  let out = g.outputs[0]
  #expect(g[out].name == "y")
  #expect(g.producer(of: out)?.opType == "Identity")
  #expect(g.producer(of: out)?.inputs == [x])
}

@Test func duplicateNamesAreRefused() throws {
  var (g, _, _) = try convRelu()
  #expect(throws: GraphError.duplicateName("w")) {
    try g.addInitializer(name: "w", Tensor(floats: [1], shape: [1]))
  }
  #expect(throws: GraphError.duplicateName("c")) {
    try g.addNode(opType: "Relu", inputs: [g.value(named: "x")], outputs: ["c"])
  }
  #expect(g.uniqueName("w") == "w_1")
  #expect(g.uniqueName("fresh") == "fresh")
}

@Test func topologicalOrderIsDeterministicAndStable() throws {
  var g = Graph()
  let x = try g.addInput(name: "x", type: nil)
  // Added out of dependency order through setInput: b reads a's output after both exist.
  let b = try g.addNode(opType: "Neg", inputs: [x], outputs: ["b"])
  let a = try g.addNode(opType: "Abs", inputs: [x], outputs: ["a"])
  g.setInput(0, of: b, to: g[a].outputs[0])
  g.addOutput(g[b].outputs[0]!)
  try g.verify()
  #expect(g.topologicalOrder() == [a, b])
  #expect(g.dependencies(of: b) == [a])
  #expect(g.consumers(of: a) == [b])
}

@Test func cyclesAreFoundByTheVerifier() throws {
  var g = Graph(name: "loop")
  let x = try g.addInput(name: "x", type: nil)
  let a = try g.addNode(opType: "Add", name: "a", inputs: [x, x], outputs: ["p"])
  let b = try g.addNode(opType: "Mul", name: "b", inputs: [g[a].outputs[0], x], outputs: ["q"])
  g.setInput(1, of: a, to: g[b].outputs[0])
  g.addOutput(g[b].outputs[0]!)
  #expect(g.topologicalOrder() == nil)
  #expect(g.nodesOnCycles() == [a, b])
  #expect(throws: VerificationError.self) { try g.verify() }
  do {
    try g.verify()
  } catch {
    #expect(error.message.contains("cycle"))
    #expect(error.message.contains("Add 'a'"))
  }
}

@Test func nodesOnCyclesSkipsLongChainsAroundTheCycle() throws {
  var g = Graph(name: "tail")
  let x = try g.addInput(name: "x", type: nil)
  // A chain into the cycle, the cycle a ⇄ b, and a chain out of it whose nodes come in reading
  // order, so that stripping nodes without consumers in ID order would free one node per pass.
  var v = x
  for i in 0..<2_000 {
    let n = try g.addNode(opType: "Relu", inputs: [v], outputs: ["in\(i)"])
    v = g[n].outputs[0]!
  }
  let a = try g.addNode(opType: "Add", name: "a", inputs: [v, v], outputs: ["p"])
  let b = try g.addNode(opType: "Neg", name: "b", inputs: [g[a].outputs[0]], outputs: ["q"])
  g.setInput(1, of: a, to: g[b].outputs[0])
  v = g[b].outputs[0]!
  for i in 0..<2_000 {
    let n = try g.addNode(opType: "Relu", inputs: [v], outputs: ["out\(i)"])
    v = g[n].outputs[0]!
  }
  g.addOutput(v)
  #expect(g.topologicalOrder() == nil)
  #expect(g.nodesOnCycles() == [a, b])
  #expect(throws: VerificationError.self) { try g.verify() }
}

@Test func verifyAcceptsManyInputsAndUsesInAnyOrder() throws {
  var g = Graph()
  var inputs: [ValueID] = []
  for i in 0..<5_000 { inputs.append(try g.addInput(name: "x\(i)", type: nil)) }
  // Uses recorded out of node order: setInput appends the use after those of later nodes.
  let sum = try g.addNode(opType: "Sum", inputs: Array(inputs.prefix(3)), outputs: ["s"])
  let neg = try g.addNode(opType: "Neg", inputs: [inputs[0]], outputs: ["n"])
  g.setInput(0, of: sum, to: inputs[1])
  g.setInput(0, of: sum, to: inputs[0])
  g.addOutput(g[sum].outputs[0]!)
  g.addOutput(g[neg].outputs[0]!)
  #expect(g.uses(of: inputs[0]) == [.input(neg, 0), .input(sum, 0)])
  try g.verify()
  #expect(g.topologicalOrder() == [sum, neg])
}

@Test func subgraphCapturesAreUses() throws {
  var branch = Graph(name: "then")
  let outer = try branch.addOuterReference(name: "c")
  let neg = try branch.addNode(opType: "Neg", inputs: [outer], outputs: ["t"])
  branch.addOutput(branch[neg].outputs[0]!)

  var (g, conv, relu) = try convRelu()
  let cond = try g.addInput(name: "cond", type: .tensor(.bool, shape: []))
  let ifNode = try g.addNode(
    opType: "If", inputs: [cond], outputs: ["r"],
    attributes: [Attribute("then_branch", .graph(branch)), Attribute("else_branch", .graph(branch))])
  g.addOutput(g[ifNode].outputs[0]!)
  let c = g[conv].outputs[0]!
  #expect(g[ifNode].captures == [c])
  #expect(g.uses(of: c).contains(.capture(ifNode)))
  try g.verify()
  #expect(g.dependencies(of: ifNode) == [conv])

  // Replacing the captured value renames the reference inside both branches.
  let x = g.value(named: "x")!
  g.replaceAllUses(of: c, with: x)
  #expect(g[ifNode].captures == [x])
  let thenBranch = g[ifNode].attribute("then_branch")!.subgraphs[0]
  #expect(thenBranch.value(named: "x") != nil)
  #expect(thenBranch.value(named: "c") == nil)
  try g.verify()
  #expect(g[relu].inputs[0] == x)
  #expect(Set(g.uses(of: x)) == [.input(conv, 0), .input(relu, 0), .capture(ifNode)])
}

@Test func unknownSubgraphNamesBecomeOuterReferencesOfTheParent() throws {
  var inner = Graph(name: "inner")
  let ref = try inner.addOuterReference(name: "far")
  inner.addOutput(ref)
  var middle = Graph(name: "middle")
  let c = try middle.addInput(name: "c2", type: nil)
  let node = try middle.addNode(opType: "If", inputs: [c], outputs: ["m"], attributes: [Attribute("then_branch", .graph(inner))])
  #expect(middle[middle[node].captures[0]].name == "far")
  #expect(middle.outerReferences.map { middle[$0].name } == ["far"])
}

@Test func tensorsCheckTheirByteCounts() {
  let storage = TensorStorage.copying([Float](repeating: 1, count: 6))
  #expect(Tensor(dtype: .float, shape: [2, 3], storage: storage) != nil)
  #expect(Tensor(dtype: .float, shape: [2, 4], storage: storage) == nil)
  #expect(Tensor(dtype: .float, shape: [1 << 62, 1 << 62], storage: storage) == nil)
  #expect(Tensor(dtype: .float, shape: [-1, -6], storage: storage) == nil)
  #expect(checkedElementCount([1 << 40, 1 << 30]) == nil)
  #expect(checkedElementCount([]) == 1)
  #expect(DType.int4.byteCount(elements: 5) == 3)
  #expect(DType(rawValue: 99).description == "dtype99")
  #expect(DType(name: "bfloat16") == .bfloat16)
}

@Test func tensorDigestsFollowContent() {
  let a = Tensor(floats: [1, 2, 3], shape: [3])
  let b = Tensor(floats: [1, 2, 3], shape: [3])
  let c = Tensor(floats: [1, 2, 3], shape: [1, 3])
  #expect(a.digest == b.digest)
  #expect(a.hasSameContent(as: b))
  #expect(a.digest != c.digest)
  #expect(!a.hasSameContent(as: c))
  #expect(Tensor(int64s: [7, -1], shape: [2]).int64s == [7, -1])
}
