import EMConvTestSupport

/// libFuzzer entry point of the 'nexus' target (input layout: `FuzzTarget.nexus`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzz.run(.nexus, data, size)
}
