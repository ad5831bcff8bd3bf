import Graph
import Linalg

/// A graph ready to run: a kernel per node in topological order, and every value numbered by a
/// slot of the environment the nodes read and write.
final class CompiledGraph: Sendable {
  struct Step: Sendable {
    let kernel: any Kernel
    let label: NodeLabel
    let inputs: [Int?]
    let outputs: [Int?]
    /// Values the node's subgraphs read, by name and slot.
    let captures: [(name: String, slot: Int)]
  }

  struct Input: Sendable {
    let name: String
    let slot: Int
    let type: ValueType?
    let defaultValue: NDArray?
  }

  struct Output: Sendable {
    let name: String
    let slot: Int
    /// Declared float16: converted back from the runtime's float32 on return.
    let isFloat16: Bool
  }

  let steps: [Step]
  let slotCount: Int
  let slotNames: [String]
  let slotByName: [String: Int]
  /// The step producing each slot; nil for constants, inputs and outer references.
  let producer: [Int?]
  let constants: [(slot: Int, value: NDArray)]
  let inputs: [Input]
  let outerReferences: [(name: String, slot: Int)]
  let outputs: [Output]
  /// The schedule of a run fetching the graph's outputs, computed once.
  private let outputSchedule: [(step: Int, release: [Int])]

  init(graph: Graph, opset: Int, registry: KernelRegistry) throws(RuntimeError) {
    guard let order = graph.topologicalOrder() else {
      let names = graph.nodesOnCycles().map { NodeLabel(graph[$0], in: graph).reference }
      throw .graph("the graph has a cycle through \(names.joined(separator: ", "))")
    }
    var slotOf: [ValueID: Int] = [:]
    for (i, v) in graph.valueIDs.enumerated() { slotOf[v] = i }
    slotNames = graph.valueIDs.map { graph[$0].name }
    slotCount = slotNames.count
    slotByName = Dictionary(slotNames.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })

    var constants: [(slot: Int, value: NDArray)] = []
    var outer: [(name: String, slot: Int)] = []
    var declaredInputs: [Int: Input] = [:]
    for v in graph.valueIDs {
      let (value, slot) = (graph[v], slotOf[v]!)
      switch value.definition {
      case .initializer(let t): constants.append((slot, try Self.load(t, name: value.name)))
      case .input(let d):
        let defaultValue = try d.map { (t) throws(RuntimeError) in try Self.load(t, name: value.name) }
        declaredInputs[slot] = Input(name: value.name, slot: slot, type: value.type, defaultValue: defaultValue)
      case .outerScope: outer.append((value.name, slot))
      case .node: break
      }
    }
    self.constants = constants
    inputs = graph.inputs.compactMap { declaredInputs[slotOf[$0]!] }
    outerReferences = outer
    outputs = graph.outputs.map { id in
      Output(name: graph[id].name, slot: slotOf[id]!, isFloat16: graph[id].type?.tensorElementType == .float16)
    }

    var steps: [Step] = []
    var producer = [Int?](repeating: nil, count: slotCount)
    for id in order {
      let node = graph[id]
      let (kernel, label) = try registry.makeKernel(for: node, in: graph, opset: opset)
      for case let output? in node.outputs { producer[slotOf[output]!] = steps.count }
      steps.append(
        Step(
          kernel: kernel, label: label, inputs: node.inputs.map { $0.map { slotOf[$0]! } },
          outputs: node.outputs.map { $0.map { slotOf[$0]! } },
          captures: node.captures.map { (graph[$0].name, slotOf[$0]!) }))
    }
    self.steps = steps
    self.producer = producer
    outputSchedule = Self.schedule(fetch: outputs.map(\.slot), steps: steps, producer: producer, slotCount: slotCount)
  }

  private static func load(_ tensor: Tensor, name: String) throws(RuntimeError) -> NDArray {
    do {
      return try NDArray.runtimeConstant(tensor)
    } catch {
      throw .graph("initializer '\(name)': \(error.message)")
    }
  }

  // MARK: Running

  /// The steps needed for `fetch`, in order, with the slots each step frees after running.
  func schedule(fetch: [Int]) -> [(step: Int, release: [Int])] {
    Self.schedule(fetch: fetch, steps: steps, producer: producer, slotCount: slotCount)
  }

  private static func schedule(
    fetch: [Int], steps: [Step], producer: [Int?], slotCount: Int
  ) -> [(step: Int, release: [Int])] {
    var needed = [Bool](repeating: false, count: steps.count)
    var stack = fetch
    var seen = [Bool](repeating: false, count: slotCount)
    while let slot = stack.popLast() {
      guard !seen[slot] else { continue }
      seen[slot] = true
      guard let p = producer[slot], !needed[p] else { continue }
      needed[p] = true
      for case let s? in steps[p].inputs { stack.append(s) }
      for c in steps[p].captures { stack.append(c.slot) }
    }
    let order = steps.indices.filter { needed[$0] }
    // Each slot is freed after its last reader, or right after its producer when nobody reads it.
    var lastUse = [Int](repeating: -1, count: slotCount)
    for (position, s) in order.enumerated() {
      for case let slot? in steps[s].outputs { lastUse[slot] = position }
      for case let slot? in steps[s].inputs { lastUse[slot] = position }
      for c in steps[s].captures { lastUse[c.slot] = position }
    }
    for slot in fetch { lastUse[slot] = Int.max }
    var release = [[Int]](repeating: [], count: order.count)
    for slot in 0..<slotCount where lastUse[slot] >= 0 && lastUse[slot] < order.count {
      release[lastUse[slot]].append(slot)
    }
    return order.enumerated().map { ($1, release[$0]) }
  }

  func slot(named name: String) -> Int? { slotByName[name] }

  /// Runs the steps `fetch` needs and returns the fetched values. `outer` binds the outer
  /// references of a subgraph.
  func run(
    feeds: [String: NDArray], outer: [String: NDArray], fetch: [Int], threadCount: Int
  ) throws(RuntimeError) -> [NDArray] {
    var env = [NDArray?](repeating: nil, count: slotCount)
    for (slot, value) in constants { env[slot] = value }
    for (name, slot) in outerReferences { env[slot] = outer[name] }
    for name in feeds.keys where !inputs.contains(where: { $0.name == name }) {
      throw .graph("'\(name)' is not an input of the graph")
    }
    for input in inputs {
      if let fed = feeds[input.name] {
        env[input.slot] = try Self.check(fed, against: input)
      } else if let d = input.defaultValue {
        env[input.slot] = d
      }
    }
    let plan = fetch == outputs.map(\.slot) ? outputSchedule : schedule(fetch: fetch)
    for (stepIndex, release) in plan {
      try run(steps[stepIndex], &env, threadCount: threadCount)
      for slot in release { env[slot] = nil }
    }
    var out: [NDArray] = []
    for slot in fetch {
      guard let value = env[slot] else { throw missing(slot, for: nil) }
      out.append(value)
    }
    return out
  }

  /// Runs one step, reading its inputs from `env` and writing its outputs there.
  private func run(_ step: Step, _ env: inout [NDArray?], threadCount: Int) throws(RuntimeError) {
    var args: [NDArray?] = []
    args.reserveCapacity(step.inputs.count)
    for slot in step.inputs {
      guard let slot else {
        args.append(nil)
        continue
      }
      guard let value = env[slot] else { throw missing(slot, for: step) }
      args.append(value)
    }
    var outerValues: [String: NDArray] = [:]
    for c in step.captures {
      guard let value = env[c.slot] else { throw missing(c.slot, for: step) }
      outerValues[c.name] = value
    }
    let context = KernelContext(label: step.label, inputs: args, threadCount: threadCount, outerValues: outerValues)
    let results: [NDArray]
    do {
      results = try step.kernel.run(context)
    } catch let e as RuntimeError {
      throw e
    } catch {
      throw step.label.error("\(error)")
    }
    for case (let i, let slot?) in step.outputs.enumerated() {
      guard i < results.count else {
        throw RuntimeError(
          kind: .internal, node: step.label,
          message: "the kernel produced \(results.count) outputs; output \(i) is needed")
      }
      env[slot] = results[i]
    }
  }

  private func missing(_ slot: Int, for step: Step?) -> RuntimeError {
    let name = slotNames[slot]
    if inputs.contains(where: { $0.slot == slot }) { return .graph("graph input '\(name)' is not fed") }
    if outerReferences.contains(where: { $0.slot == slot }) { return .graph("outer value '\(name)' is not bound") }
    let what = "value '\(name)' has no value"
    guard let step else { return .graph(what) }
    return step.label.error(what)
  }

  /// A fed array, checked against the input's declared type, float16 upcast.
  private static func check(_ fed: NDArray, against input: Input) throws(RuntimeError) -> NDArray {
    guard case .tensor(let dtype, let dims)? = input.type else { return fed.upcastingFloat16() }
    guard fed.dtype == dtype || (dtype == .float16 && fed.dtype == .float) else {
      throw .graph("input '\(input.name)' expects \(dtype), got \(fed.dtype)")
    }
    if let dims {
      let matches = dims.count == fed.rank && zip(dims, fed.shape).allSatisfy { $0.value == nil || $0.value == $1 }
      guard matches else {
        throw .graph(
          "input '\(input.name)' expects shape [\(dims.map(\.description).joined(separator: ", "))], got \(describe(shape: fed.shape))"
        )
      }
    }
    return fed.upcastingFloat16()
  }
}
