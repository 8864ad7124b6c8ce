"""deploy/aws/events.yaml: cfn-lint accepts it, its rule has the documented pattern, only
that rule may send to the queue, and on moto's server the stack routes CreateInvalidation
records, and nothing else, to a queue set up as the monitor expects."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.deploy.cloudformation import load_template
from tests.support import Moto

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "aws" / "events.yaml"
PATTERN = {
    "source": ["aws.cloudfront"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {
        "eventSource": ["cloudfront.amazonaws.com"],
        "eventName": ["CreateInvalidation", "CreateInvalidationForDistributionTenant"],
    },
}


def resources(kind: str) -> dict[str, dict[str, Any]]:
    found = load_template(TEMPLATE)["Resources"].items()
    return {name: r["Properties"] for name, r in found if r["Type"] == kind}


def test_cfn_lint_accepts_the_template() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), "--regions", "us-east-1", "--", str(TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_matches_invalidations_created_and_targets_the_queue() -> None:
    [rule] = resources("AWS::Events::Rule").values()
    assert rule["EventPattern"] == PATTERN
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": "Queue.Arn"}


def test_only_the_rule_may_send_to_the_queue() -> None:
    [rule_name] = resources("AWS::Events::Rule")
    from_the_rule = {"aws:SourceArn": {"Fn::GetAtt": f"{rule_name}.Arn"}}
    [policy] = resources("AWS::SQS::QueuePolicy").values()
    assert policy["Queues"] == [{"Ref": "Queue"}]
    allow, deny = policy["PolicyDocument"]["Statement"]
    assert allow["Effect"] == "Allow" and allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {"ArnEquals": from_the_rule}
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Action"] == "sqs:SendMessage"
    assert deny["Condition"] == {"ArnNotEquals": from_the_rule}


def cloudtrail_event(event_name: str, source: str = "aws.cloudfront") -> dict[str, str]:
    detail = {
        "eventSource": "cloudfront.amazonaws.com",
        "eventName": event_name,
        "requestParameters": {"distributionId": "EDFDVBD6EXAMPLE"},
    }
    return {
        "Source": source,
        "DetailType": "AWS API Call via CloudTrail",
        "Detail": json.dumps(detail),
    }


# moto creates the queue policy as nothing (it says so in a warning): checked above.
@pytest.mark.filterwarnings("ignore:Tried to parse .*QueuePolicy:UserWarning")
def test_the_stack_on_moto_queues_only_invalidations_created(moto: Moto) -> None:
    aws = {"endpoint_url": moto.url, "region_name": "us-east-1"}
    name = f"events-{uuid.uuid4().hex[:8]}"
    cloudformation = boto3.client("cloudformation", **aws)
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": "QueueName", "ParameterValue": name}],
    )
    [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["QueueArn"].endswith(f":{name}")
    assert outputs["DeadLetterQueueArn"].endswith(f":{name}-dlq")

    sqs = boto3.client("sqs", **aws)
    queue = sqs.get_queue_attributes(QueueUrl=outputs["QueueUrl"], AttributeNames=["All"])
    attributes = queue["Attributes"]
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert attributes["ReceiveMessageWaitTimeSeconds"] == "20"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": outputs["DeadLetterQueueArn"],
        "maxReceiveCount": 5,
    }

    events = boto3.client("events", **aws)
    sent = events.put_events(
        Entries=[
            cloudtrail_event("CreateInvalidation"),
            cloudtrail_event("GetInvalidation"),
            cloudtrail_event("CreateInvalidation", source="aws.s3"),
            cloudtrail_event("CreateInvalidationForDistributionTenant"),
        ]
    )
    assert sent["FailedEntryCount"] == 0
    received = sqs.receive_message(
        QueueUrl=outputs["QueueUrl"], MaxNumberOfMessages=10, WaitTimeSeconds=0
    )
    bodies = [json.loads(m["Body"]) for m in received.get("Messages", [])]
    assert sorted(b["detail"]["eventName"] for b in bodies) == [
        "CreateInvalidation",
        "CreateInvalidationForDistributionTenant",
    ]
    assert {b["source"] for b in bodies} == {"aws.cloudfront"}
