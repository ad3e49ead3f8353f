// A Node.js client built from protos/ at run time: ListModels, then Predict on iris-knn.
// Usage: node client.js ADDRESS PROTO_ROOT; prints one JSON object with both answers.
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [address, protoRoot] = process.argv.slice(2);
const definition = protoLoader.loadSync(
  path.join(protoRoot, "protoserve/inference/v1/inference_service.proto"),
  { includeDirs: [protoRoot], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
);
const proto = grpc.loadPackageDefinition(definition);
const client = new proto.protoserve.inference.v1.InferenceService(address, grpc.credentials.createInsecure());
const deadline = () => new Date(Date.now() + 10000);

function number(value) {
  return { numberValue: value }; // protobufjs names the well-known types' fields in camelCase
}

client.ListModels({}, { deadline: deadline() }, (err, models) => {
  if (err) throw err;
  const row = {
    fields: {
      sepal_length: number(6.7), sepal_width: number(3.0), petal_length: number(5.2), petal_width: number(2.3),
    },
  };
  client.Predict({ model: "iris-knn", rows: [row] }, { deadline: deadline() }, (err2, prediction) => {
    if (err2) throw err2;
    console.log(JSON.stringify({ models: models.models.map((m) => m.name), prediction }));
    client.close();
  });
});
