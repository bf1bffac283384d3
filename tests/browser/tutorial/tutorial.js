// Client for the tutorial's chat server: text messages are relayed as typed,
// files travel as one binary message: 2 bytes name length (little endian),
// the name in UTF-8, then the file's bytes.
var socket = null;

function log(text, kind) {
  var logDiv = document.getElementById("log");
  var entry = document.createElement("div");
  entry.className = "entry " + kind;
  entry.textContent = text;
  logDiv.appendChild(entry);
  logDiv.scrollTop = logDiv.scrollHeight;
  return entry;
}

function connect() {
  if (socket !== null) {
    log("Already connected", "status");
    return;
  }
  socket = new WebSocket("ws://localhost:8080/ws");
  socket.binaryType = "arraybuffer";

  socket.onopen = function () {
    log("Connected", "status");
  };

  socket.onmessage = function (event) {
    if (typeof event.data === "string") {
      log(event.data, "received");
    } else {
      receiveFile(event.data);
    }
  };

  socket.onclose = function (event) {
    log("Disconnected: code=" + event.code + " clean=" + event.wasClean, "status");
    socket = null;
  };

  socket.onerror = function () {
    log("WebSocket error", "status");
  };
}

function sendMessage() {
  var input = document.getElementById("message");
  if (socket === null) {
    log("Not connected", "status");
    return;
  }
  if (input.value === "") {
    return;
  }
  socket.send(input.value);
  log("You: " + input.value, "sent");
  input.value = "";
}

function sendFile() {
  var input = document.getElementById("file");
  if (socket === null) {
    log("Not connected", "status");
    return;
  }
  if (input.files.length === 0) {
    log("Choose a file first", "status");
    return;
  }
  var file = input.files[0];
  var reader = new FileReader();
  reader.onload = function () {
    var nameBytes = new TextEncoder().encode(file.name);
    var fileBytes = new Uint8Array(reader.result);
    var buffer = new ArrayBuffer(2 + nameBytes.length + fileBytes.length);
    var view = new DataView(buffer);
    view.setUint16(0, nameBytes.length, true);
    var bytes = new Uint8Array(buffer);
    bytes.set(nameBytes, 2);
    bytes.set(fileBytes, 2 + nameBytes.length);
    socket.send(buffer);
    log("You sent file: " + file.name + " (" + fileBytes.length + " bytes)", "sent");
  };
  reader.readAsArrayBuffer(file);
}

function receiveFile(buffer) {
  var view = new DataView(buffer);
  var nameLength = view.getUint16(0, true);
  var name = new TextDecoder("utf-8").decode(new Uint8Array(buffer, 2, nameLength));
  var data = buffer.slice(2 + nameLength);
  var blob = new Blob([data]);

  var entry = log("Received file: ", "file");
  var link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.textContent = name + " (" + data.byteLength + " bytes)";
  entry.appendChild(link);
}

function closeConnection() {
  if (socket !== null) {
    socket.close();
  }
}

document.getElementById("message").addEventListener("keypress", function (event) {
  if (event.keyCode === 13) {
    sendMessage();
  }
});
