print("careledger")
