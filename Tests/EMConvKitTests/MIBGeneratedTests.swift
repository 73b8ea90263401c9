import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

final class MIBGeneratedTests: XCTestCase {
    func testPlaceholder() throws { XCTAssertEqual(MIBSpec().payloadBytes, 256 * 256 * 2) }
}
