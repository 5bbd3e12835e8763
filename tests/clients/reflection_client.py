"""A grpcurl stand-in on Python's grpcio (gRPC C-core): everything it knows of the coordinator
comes from server reflection (which needs no token). Usage: reflection_client.py HOST:PORT MANAGER_TOKEN.
Prints one JSON object."""

import json
import sys

import grpc
from google.protobuf import descriptor_pool, json_format
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


def call(channel, pool, method_name, request_json, token=None):
    method = pool.FindMethodByName(method_name)
    request_class = GetMessageClass(method.input_type)
    response_class = GetMessageClass(method.output_type)
    path = "/{}/{}".format(method.containing_service.full_name, method.name)
    stub = channel.unary_unary(
        path, request_serializer=request_class.SerializeToString, response_deserializer=response_class.FromString
    )
    request = json_format.Parse(json.dumps(request_json), request_class())
    try:
        metadata = [("authorization", "Bearer " + token)] if token else None
        response = stub(request, timeout=10, metadata=metadata)
        return {"ok": json_format.MessageToDict(response)}
    except grpc.RpcError as error:
        return {"code": error.code().name, "details": error.details(), **error_details(pool, error)}


def error_details(pool, error):
    """The google.rpc.Status in the trailers, its details decoded with types learnt by reflection."""
    out = {}
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))()
        status.ParseFromString(value)
        for detail in status.details:
            name = detail.type_url.split("/")[-1]
            message = GetMessageClass(pool.FindMessageTypeByName(name))()
            message.ParseFromString(detail.value)
            out.setdefault("error_details", {})[name] = json_format.MessageToDict(message)
    return out


def main():
    channel = grpc.insecure_channel(sys.argv[1])
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(database)
    manager = sys.argv[2]
    out = {"services": sorted(database.get_services())}
    out["anonymous_totals"] = call(channel, pool, "checkout.v1.StoreService.GetTotals", {})
    out["totals"] = call(channel, pool, "checkout.v1.StoreService.GetTotals", {}, manager)
    out["shifts"] = call(channel, pool, "checkout.v1.StoreService.ListShifts", {"openOnly": False}, manager)
    lane = call(channel, pool, "checkout.v1.StoreService.IssueLaneToken", {"laneId": "L1"}, manager)
    out["bad_pay"] = call(
        channel,
        pool,
        "checkout.v1.LaneService.Pay",
        {"laneId": "L1", "saleId": "L1-X", "attempt": 1, "paymentCode": "12ab"},
        lane["ok"]["token"],
    )
    out["missing_payment"] = call(
        channel, pool, "checkout.v1.StoreService.GetPayment", {"outTradeNo": "S001-L9-NOPE-1"}, manager
    )
    out["audit"] = call(channel, pool, "checkout.v1.StoreService.ListAudit", {"pageSize": 100}, manager)
    print(json.dumps(out))


main()
