// Package syncsuite holds the end-to-end tests of the MQTT contract
// between the two sides: the authorizer's handlers (server/authz) and the
// terminal's link (terminal/link), talking through the embedded broker and
// a real Mosquitto process, with an exactly-once fake back end. The tests
// live here, outside server/ and terminal/, because they import both and
// neither side may import the other.
package syncsuite
