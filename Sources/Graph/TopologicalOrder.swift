extension Graph {
  /// The nodes in a deterministic topological order: among the nodes ready at each step, the one
  /// with the lowest ID comes first, so an imported graph keeps its file order. Nil when the
  /// graph has a cycle. O(nodes + edges) apart from the ready heap, with no per-node sets.
  public func topologicalOrder() -> [NodeID]? {
    let ids = nodeIDs
    let slots = (ids.last?.index ?? -1) + 1
    var pending = [Int](repeating: 0, count: slots)
    // stamp[n] == i: n was already counted for node i (each node reads a producer once, however
    // many of its inputs that producer defines).
    var stamp = [Int](repeating: -1, count: slots)
    var ready = MinHeap()
    for id in ids {
      var count = 0
      forEachProducer(of: id) { p in
        guard p.index < slots, stamp[p.index] != id.index else { return }
        stamp[p.index] = id.index
        count += 1
      }
      pending[id.index] = count
      if count == 0 { ready.push(id) }
    }
    stamp = [Int](repeating: -1, count: slots)
    var order: [NodeID] = []
    order.reserveCapacity(ids.count)
    while let id = ready.pop() {
      order.append(id)
      forEachConsumer(of: id) { consumer in
        guard consumer.index < slots, stamp[consumer.index] != id.index else { return }
        stamp[consumer.index] = id.index
        pending[consumer.index] -= 1
        if pending[consumer.index] == 0 { ready.push(consumer) }
      }
    }
    return order.count == ids.count ? order : nil
  }

  /// Calls `body` with the producer of each value `node` reads (inputs and captures), repeats
  /// included.
  private func forEachProducer(of node: NodeID, _ body: (NodeID) -> Void) {
    let n = self[node]
    for v in n.inputs { if let v, let p = self[v].producer { body(p) } }
    for v in n.captures { if let p = self[v].producer { body(p) } }
  }

  /// Calls `body` with each node that reads an output of `node`, repeats included.
  private func forEachConsumer(of node: NodeID, _ body: (NodeID) -> Void) {
    for output in self[node].outputs {
      guard let output else { continue }
      for use in self[output].uses {
        switch use {
        case .input(let n, _), .capture(let n): body(n)
        case .graphOutput: break
        }
      }
    }
  }

  /// Nodes that must run before `node`, each once.
  public func dependencies(of node: NodeID) -> Set<NodeID> {
    var result = Set<NodeID>()
    let n = self[node]
    for v in n.inputs.compactMap({ $0 }) + n.captures {
      if let p = self[v].producer { result.insert(p) }
    }
    return result
  }

  /// Nodes that read an output of `node`, each once.
  public func consumers(of node: NodeID) -> Set<NodeID> {
    var result = Set<NodeID>()
    for output in self[node].outputs.compactMap({ $0 }) {
      for use in self[output].uses {
        switch use {
        case .input(let n, _), .capture(let n): result.insert(n)
        case .graphOutput: break
        }
      }
    }
    return result
  }

  /// The nodes on some cycle, for error messages; empty when the graph is acyclic. These are the
  /// nodes left once those with no producer or no consumer among the remaining ones are stripped,
  /// one at a time from a worklist: O(nodes + edges), whatever order the nodes come in.
  public func nodesOnCycles() -> [NodeID] {
    guard topologicalOrder() == nil else { return [] }
    let ids = nodeIDs
    let slots = (ids.last?.index ?? -1) + 1
    var producers = [[NodeID]](repeating: [], count: slots)
    var readers = [[NodeID]](repeating: [], count: slots)
    for id in ids {
      producers[id.index] = Array(dependencies(of: id))
      readers[id.index] = Array(consumers(of: id))
    }
    var alive = [Bool](repeating: false, count: slots)
    for id in ids { alive[id.index] = true }
    // Live producers and consumers of each node, counting only nodes of this graph.
    var producerCount = producers.map { $0.count { $0.index < slots && alive[$0.index] } }
    var consumerCount = readers.map { $0.count { $0.index < slots && alive[$0.index] } }
    var stripped = ids.filter { producerCount[$0.index] == 0 || consumerCount[$0.index] == 0 }
    while let id = stripped.popLast() {
      guard alive[id.index] else { continue }
      alive[id.index] = false
      for c in readers[id.index] where c.index < slots && alive[c.index] {
        producerCount[c.index] -= 1
        if producerCount[c.index] == 0 { stripped.append(c) }
      }
      for p in producers[id.index] where p.index < slots && alive[p.index] {
        consumerCount[p.index] -= 1
        if consumerCount[p.index] == 0 { stripped.append(p) }
      }
    }
    return ids.filter { alive[$0.index] }
  }
}

/// A binary min-heap of node IDs.
private struct MinHeap {
  private var items: [NodeID] = []

  mutating func push(_ id: NodeID) {
    items.append(id)
    var i = items.count - 1
    while i > 0 {
      let parent = (i - 1) / 2
      guard items[i] < items[parent] else { break }
      items.swapAt(i, parent)
      i = parent
    }
  }

  mutating func pop() -> NodeID? {
    guard let first = items.first else { return nil }
    let last = items.removeLast()
    if !items.isEmpty {
      items[0] = last
      var i = 0
      while true {
        let l = 2 * i + 1, r = l + 1
        var smallest = i
        if l < items.count, items[l] < items[smallest] { smallest = l }
        if r < items.count, items[r] < items[smallest] { smallest = r }
        if smallest == i { break }
        items.swapAt(i, smallest)
        i = smallest
      }
    }
    return first
  }
}
