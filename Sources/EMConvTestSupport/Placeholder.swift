import EMConvKit
